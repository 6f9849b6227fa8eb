// Shared by the Fastify and Express peers of Kiln's benchmark: the cluster
// start-up TechEmpower's Node entries use (one worker per core), the pg pool
// and the rules both servers follow.
'use strict';

const cluster = require('node:cluster');
const os = require('node:os');

/** Rows in `world`; ids and random numbers are in 1..WORLD_ROWS. */
const WORLD_ROWS = 10000;

/** Workers: one per core, as TechEmpower's Node entries fork. */
const WORKERS = Number(process.env.WORKERS) || os.availableParallelism();

/** A random integer in 1..WORLD_ROWS. */
const randomId = () => 1 + Math.floor(Math.random() * WORLD_ROWS);

/** TechEmpower's rule for ?queries=N: clamped to 1..500, anything not a number being 1. */
function clampQueries(raw) {
  const n = Number.parseInt(raw, 10);
  if (Number.isNaN(n) || n < 1) return 1;
  return Math.min(n, 500);
}

/**
 * The pg pool of one worker (`Pool` is pg's, passed in because pg is
 * installed in each server's own node_modules): DB_POOL connections (the harness's pool size)
 * are shared out between the workers, so that the server as a whole holds
 * as many as every other target.
 */
function makePool(Pool) {
  const total = Number(process.env.DB_POOL) || 8;
  return new Pool({
    connectionString: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/hello_world',
    max: Math.max(1, Math.ceil(total / WORKERS)),
  });
}

// Statements named once, so that pg prepares each once per connection.
const SELECT_WORLD = 'SELECT id, randomnumber AS "randomNumber" FROM world WHERE id = $1';
const UPDATE_WORLD = 'UPDATE world SET randomnumber = $1 WHERE id = $2';

/** One random row of `world`, by its own (prepared) query. */
async function randomWorld(pool) {
  const result = await pool.query({ name: 'world', text: SELECT_WORLD, values: [randomId()] });
  return result.rows[0];
}

/** N random rows, one query each, one after the other (as every other target does). */
async function randomWorlds(pool, count) {
  const worlds = [];
  for (let i = 0; i < count; i++) worlds.push(await randomWorld(pool));
  return worlds;
}

/** N random rows, each given a new random number and saved by its own UPDATE. */
async function updateWorlds(pool, count) {
  const worlds = await randomWorlds(pool, count);
  for (const world of worlds) {
    world.randomNumber = randomId();
    await pool.query({ name: 'update', text: UPDATE_WORLD, values: [world.randomNumber, world.id] });
  }
  return worlds;
}

/** Every fortune plus the one added at request time, sorted by message. */
async function sortedFortunes(pool) {
  const result = await pool.query({ name: 'fortunes', text: 'SELECT id, message FROM fortune' });
  const fortunes = result.rows;
  fortunes.push({ id: 0, message: 'Additional fortune added at request time.' });
  fortunes.sort((a, b) => (a.message < b.message ? -1 : a.message > b.message ? 1 : 0));
  return fortunes;
}

/**
 * Runs `startWorker(port)` in WORKERS forked processes sharing the port
 * given as the first argument (the primary only supervises). The primary
 * passes SIGTERM on and exits, so that stopping its PID stops the server;
 * a worker whose primary is gone exits too.
 */
function runCluster(name, startWorker) {
  const port = Number(process.argv[2] || process.env.PORT || 8080);
  if (cluster.isPrimary) {
    for (let i = 0; i < WORKERS; i++) cluster.fork();
    cluster.on('exit', (worker, code, signal) => {
      if (!shuttingDown) {
        console.error(`${name}: worker ${worker.process.pid} died (${signal || code}); stopping`);
        process.exit(1);
      }
    });
    let shuttingDown = false;
    process.on('SIGTERM', () => {
      shuttingDown = true;
      for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
      process.exit(0);
    });
    console.error(`${name}: ${WORKERS} workers listening on http://127.0.0.1:${port}/`);
  } else {
    process.on('disconnect', () => process.exit(0));
    startWorker(port).catch((error) => {
      console.error(`${name}: ${error.stack || error}`);
      process.exit(1);
    });
  }
}

module.exports = { clampQueries, makePool, randomWorld, randomWorlds, updateWorlds, sortedFortunes, runCluster };
