/**
 * Replay reads captured SQL text under the lexical state the server reported, as the live session
 * did: a session that turned standard_conforming_strings off has its backslash text refused live
 * (PGWARD_ERR_SQL_LEXICAL_STRING_SYNTAX) and on replay alike; before this, replay read every text
 * as UTF-8 with standard strings and allowed what the live gateway had refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { LOCAL_PG } from '../helpers/cluster';
import { SHIPPED_BUNDLE, startGateway, stopAllGateways } from '../helpers/gateway';
import { runReplay } from '../../gateway/src/replay/cli';
import { readErrorFields } from '../../gateway/src/protocol/backend/error-response';
import { captureFiles, liveDecisions } from './helpers';

jest.setTimeout(60_000);

let tmp = '';
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-replay-lexical-'));
});
afterAll(async () => {
  await stopAllGateways();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('standard_conforming_strings=off: live and replay refuse the same backslash text, allow the rest', async () => {
  const dir = path.join(tmp, 'cap');
  const gw = await startGateway({
    config: {
      capture: { enabled: true, dir, redact: { literals: false, parameters: false } },
      decision_log: { enabled: true },
      audit: { sink: 'none', redact: { literals: false, parameters: false } },
    },
  });
  const c = new Client({ host: gw.host, port: gw.port, user: LOCAL_PG.user, database: 'postgres' });
  await c.connect();
  await c.query('SET standard_conforming_strings = off');
  const refused = await c.query("SELECT 'a\\' || 'b' AS v").then(
    () => null,
    (e: Error) => e.message,
  );
  expect(refused).toMatch(/backslash|standard_conforming_strings/i);
  expect((await c.query("SELECT 'plain' AS v")).rows[0].v).toBe('plain');
  await c.query('SET standard_conforming_strings = on');
  expect((await c.query("SELECT 'a\\' || 'b' AS v")).rows[0].v).toBe('a\\b');
  await c.end();
  expect(await gw.stop()).toBe(0);

  const files = captureFiles(dir);
  expect(files).toHaveLength(1);
  const run = await runReplay({ captures: files, bundle: SHIPPED_BUNDLE });
  const queries = run.decisions.filter((d) => d.type === 'Query').map((d) => [d.sql, d.allow, d.error_code]);
  expect(queries).toEqual([
    ['SET standard_conforming_strings = off', true, null],
    // Refused before it became text: no SQL in the input, as live; the report shows it as sent.
    ["SELECT 'a\\' || 'b' AS v", false, 'PGWARD_ERR_SQL_LEXICAL_STRING_SYNTAX'],
    ["SELECT 'plain' AS v", true, null],
    ['SET standard_conforming_strings = on', true, null],
    ["SELECT 'a\\' || 'b' AS v", true, null],
  ]);
  // Keyed as the empty text the judge saw, not as the same text read later.
  const [, refusedKey, , , readKey] = run.decisions.filter((d) => d.type === 'Query').map((d) => d.key);
  expect(refusedKey).not.toBe(readKey);
  // And exactly what the live gateway decided, message by message.
  const live = [...liveDecisions(gw).values()].flat().map((o) => [o.type, o.allow]);
  expect(run.decisions.map((d) => [d.type, d.allow])).toEqual(live);
});

test('literals redacted: a refused Query or Parse is captured with its text withheld and its refusal, and replay denies it as live did', async () => {
  const dir = path.join(tmp, 'cap-redacted');
  const gw = await startGateway({
    config: {
      capture: { enabled: true, dir, redact: { literals: true, parameters: true } },
      decision_log: { enabled: true },
      audit: { sink: 'none', redact: { literals: true, parameters: true } },
    },
  });
  const c = new Client({ host: gw.host, port: gw.port, user: LOCAL_PG.user, database: 'postgres' });
  await c.connect();
  await c.query('SET standard_conforming_strings = off');
  const secret = "SELECT 'sec\\ret' || 'b' AS v";
  await expect(c.query(secret)).rejects.toThrow(/backslash|standard_conforming_strings/i);
  // Extended protocol: the Parse is refused, and the Bind behind it finds no unnamed statement.
  await expect(c.query({ text: "SELECT 'sec\\ret' || $1::text AS v", values: ['b'] })).rejects.toThrow();
  expect((await c.query({ text: 'SELECT $1::text AS v', values: ['x'] })).rows[0].v).toBe('x');
  // Text that does not parse: redacted, it must still not parse, so replay denies it as live did.
  await c.query('SET standard_conforming_strings = on');
  await expect(c.query("SELECT 'sec-unterminated")).rejects.toThrow(/unterminated/);
  await expect(c.query({ text: "SELECT $1::text, 'sec-unterminated", values: ['b'] })).rejects.toThrow(
    /unterminated/,
  );
  // A server error: PostgreSQL may quote values in it; captured with severity and SQLSTATE only.
  await expect(c.query("SELECT 'sec-value'::int")).rejects.toThrow(/invalid input syntax/);
  await c.end();
  expect(await gw.stop()).toBe(0);

  const files = captureFiles(dir);
  expect(files).toHaveLength(1);
  const text = fs.readFileSync(files[0]!, 'utf8');
  const records = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { dir?: string; frame?: string; unread?: { code: string } });
  // No literal is in any client frame (decoded), and the refusals are recorded.
  const frames = records.filter((r) => r.dir === 'F').map((r) => Buffer.from(r.frame!, 'base64'));
  expect(frames.length).toBeGreaterThan(8);
  for (const f of frames) expect(f.toString('latin1')).not.toMatch(/sec/);
  const errors = records
    .filter((r) => r.dir === 'B')
    .map((r) => Buffer.from(r.frame!, 'base64'))
    .filter((f) => f[0] === 0x45)
    .map((f) => readErrorFields(f));
  expect(errors.find((e) => e.code === '22P02')).toMatchObject({ severity: 'ERROR', message: '[REDACTED]' });
  for (const e of errors) expect(JSON.stringify(e)).not.toMatch(/sec/);
  expect(records.filter((r) => r.unread).map((r) => r.unread!.code)).toEqual([
    'PGWARD_ERR_SQL_LEXICAL_STRING_SYNTAX',
    'PGWARD_ERR_SQL_LEXICAL_STRING_SYNTAX',
  ]);

  const run = await runReplay({ captures: files, bundle: SHIPPED_BUNDLE });
  const refused = run.decisions.filter((d) => d.error_code === 'PGWARD_ERR_SQL_LEXICAL_STRING_SYNTAX');
  expect(refused.map((d) => [d.type, d.allow, d.sqlstate])).toEqual([
    ['Query', false, '0A000'],
    ['Parse', false, '0A000'],
  ]);
  const unparsed = run.decisions.filter((d) => d.sqlstate === '42601');
  expect(unparsed.map((d) => [d.type, d.sql])).toEqual([
    ['Query', "SELECT '"],
    ['Parse', "SELECT $1::text, '"],
  ]);
  // Message by message what the live gateway decided (before, replay allowed both as empty text).
  const live = [...liveDecisions(gw).values()].flat().map((o) => [o.type, o.allow]);
  expect(run.decisions.map((d) => [d.type, d.allow])).toEqual(live);
});
