'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- plain CommonJS script */
const { Client } = require('pg');

/**
 * A connected client for the generator scripts: PGHOST, PGPORT, PGUSER, PGDATABASE, defaulting
 * to the test cluster (127.0.0.1:5432, superuser postgres, database postgres).
 */
async function connectFromEnv() {
  const client = new Client({
    host: process.env.PGHOST ?? '127.0.0.1',
    port: Number(process.env.PGPORT ?? 5432),
    user: process.env.PGUSER ?? 'postgres',
    database: process.env.PGDATABASE ?? 'postgres',
  });
  await client.connect();
  return client;
}

module.exports = { connectFromEnv };
