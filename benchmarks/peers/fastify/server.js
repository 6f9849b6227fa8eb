// Kiln's benchmark peer on Fastify 5: TechEmpower's plaintext, json, db,
// queries, fortunes and updates tests as Fastify's docs teach them (routes
// with response schemas, so JSON goes through fast-json-stringify; the
// fortunes page through @fastify/view and Handlebars), one worker per core.
//
// benchmarks/run starts it; by hand, after benchmarks/db/setup and npm ci:
// `node server.js 8080`. DATABASE_URL and DB_POOL (the connections of all
// workers together) change the database and the pool.
'use strict';

const path = require('node:path');
const Fastify = require('fastify');
const { Pool } = require('pg');
const common = require('../node/common.js');

const worldSchema = {
  type: 'object',
  properties: { id: { type: 'integer' }, randomNumber: { type: 'integer' } },
};
const worldsSchema = { type: 'array', items: worldSchema };

async function startWorker(port) {
  const app = Fastify({ logger: false });
  const pool = common.makePool(Pool);
  await app.register(require('@fastify/view'), {
    engine: { handlebars: require('handlebars') },
    root: path.join(__dirname, 'views'),
  });
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('Server', 'Fastify');
    done();
  });

  app.get('/plaintext', (request, reply) => {
    reply.header('Content-Type', 'text/plain').send('Hello, World!');
  });
  app.get(
    '/json',
    { schema: { response: { 200: { type: 'object', properties: { message: { type: 'string' } } } } } },
    async () => ({ message: 'Hello, World!' }),
  );
  app.get('/db', { schema: { response: { 200: worldSchema } } }, () => common.randomWorld(pool));
  app.get('/queries', { schema: { response: { 200: worldsSchema } } }, (request) =>
    common.randomWorlds(pool, common.clampQueries(request.query.queries)),
  );
  app.get('/updates', { schema: { response: { 200: worldsSchema } } }, (request) =>
    common.updateWorlds(pool, common.clampQueries(request.query.queries)),
  );
  app.get('/fortunes', async (request, reply) => {
    const fortunes = await common.sortedFortunes(pool);
    return reply.header('Content-Type', 'text/html; charset=utf-8').view('fortunes.hbs', { fortunes });
  });

  await app.listen({ port, host: '127.0.0.1' });
}

common.runCluster('fastify', startWorker);
