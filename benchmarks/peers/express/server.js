// Kiln's benchmark peer on Express 5: TechEmpower's plaintext, json, db,
// queries, fortunes and updates tests as Express's docs teach them
// (`res.json`, `res.send`, the fortunes page through `res.render` and EJS,
// `x-powered-by` off), one worker per core.
//
// benchmarks/run starts it; by hand, after benchmarks/db/setup and npm ci:
// `node server.js 8080`. DATABASE_URL and DB_POOL (the connections of all
// workers together) change the database and the pool.
'use strict';

const path = require('node:path');
const express = require('express');
const { Pool } = require('pg');
const common = require('../node/common.js');

async function startWorker(port) {
  const app = express();
  const pool = common.makePool(Pool);
  app.disable('x-powered-by');
  app.set('view engine', 'ejs');
  app.set('views', path.join(__dirname, 'views'));
  app.use((req, res, next) => {
    res.set('Server', 'Express');
    next();
  });

  app.get('/plaintext', (req, res) => {
    res.type('text/plain').send('Hello, World!');
  });
  app.get('/json', (req, res) => {
    res.json({ message: 'Hello, World!' });
  });
  // Express 5 passes a rejected promise from a handler on to its error
  // handler (a 500 without details in production).
  app.get('/db', async (req, res) => {
    res.json(await common.randomWorld(pool));
  });
  app.get('/queries', async (req, res) => {
    res.json(await common.randomWorlds(pool, common.clampQueries(req.query.queries)));
  });
  app.get('/updates', async (req, res) => {
    res.json(await common.updateWorlds(pool, common.clampQueries(req.query.queries)));
  });
  app.get('/fortunes', async (req, res) => {
    res.render('fortunes', { fortunes: await common.sortedFortunes(pool) });
  });

  await new Promise((resolve, reject) => {
    app.listen(port, '127.0.0.1', (error) => (error ? reject(error) : resolve()));
  });
}

common.runCluster('express', startWorker);
