/**
 * The statement log of a live gateway: allowed and denied statements (simple and extended
 * protocol) are each found in it with their SQL redacted; with `audit.redact.literals: false` the
 * literal appears; and with the defaults no test literal appears in any file pgward writes (audit
 * log, statement log, decision log, captures). Also: /v1/bundle names the OPA that built the bundle.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { ensureLocalTestDb } from '../helpers/cluster';
import { REPO, startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { validateEvent } from './event-schema';
import { encodeBind, encodeExecute, encodeParse, encodeQuery, encodeSync } from '../../gateway/src/protocol';
import { RawClient, errorOf } from '../policy/raw-client';

type Rec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const LITERAL = 'pgward-literal-7391';
const BIND_VALUE = 'pgward-bind-value-7391';
const NUMBER = 7391424242;

let db: string;
const dirs: string[] = [];

beforeAll(async () => {
  db = (await ensureLocalTestDb()).database;
  const c = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: db });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS stmt_log_t (id bigint, note text)');
  await c.end();
});

afterAll(async () => {
  await stopAllGateways();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function files(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(dir, f))
    .filter((f) => fs.statSync(f).isFile());
}

function readJsonl(file: string): Rec[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Rec);
}

/** A gateway writing every log to files under a fresh directory (capture on). */
async function gatewayWithLogs(
  extra: Record<string, unknown> = {},
): Promise<{ gw: RunningGateway; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-stmt-it-'));
  dirs.push(dir);
  const gw = await startGateway({
    config: {
      audit: {
        sink: 'file',
        file: { path: path.join(dir, 'audit.jsonl') },
        ...((extra.audit as object) ?? {}),
      },
      statement_log: { enabled: true, sink: 'file', file: { path: path.join(dir, 'statements.jsonl') } },
      decision_log: { enabled: true, sink: 'file', file: { path: path.join(dir, 'decisions.jsonl') } },
      capture: { enabled: true, dir: path.join(dir, 'capture') },
    },
  });
  return { gw, dir };
}

/** Runs allowed and denied statements through the gateway; returns the denial's SQLSTATE. */
async function workload(gw: RunningGateway): Promise<string> {
  const c = new Client({
    host: gw.host,
    port: gw.port,
    user: 'postgres',
    database: db,
    application_name: 'stmt-it',
  });
  await c.connect();
  await c.query(`INSERT INTO stmt_log_t VALUES (${NUMBER}, '${LITERAL}'), (2, 'x')`);
  await c.query(`SELECT note FROM stmt_log_t WHERE note = '${LITERAL}'`);
  await c.query('SELECT note FROM stmt_log_t WHERE note = $1', [BIND_VALUE]);
  const err = (await c.query(`DELETE FROM stmt_log_t`).then(
    () => {
      throw new Error('expected a denial');
    },
    (e: unknown) => e,
  )) as Rec;
  await c.query(`DELETE FROM stmt_log_t WHERE id = ${NUMBER} OR note = '${LITERAL}'`);
  await c.query(`SELECT * FROM stmt_log_missing WHERE note = '${LITERAL}'`).catch(() => undefined);
  await c.end();
  return String(err.code);
}

test('allowed and denied statements are in the statement log, redacted; no literal in any file pgward writes', async () => {
  const { gw, dir } = await gatewayWithLogs();
  const denial = await workload(gw);
  expect(denial).toBe('42501');
  expect(await gw.stop()).toBe(0);

  const recs = readJsonl(path.join(dir, 'statements.jsonl'));
  for (const r of recs) validateEvent(r);
  const statements = recs.filter((r) => r.event === 'statement');
  const bySql = (re: RegExp): Rec[] => statements.filter((r) => re.test(String(r.sql)));

  const insert = bySql(/^INSERT INTO stmt_log_t VALUES/);
  expect(insert).toHaveLength(1);
  expect(insert[0]).toMatchObject({
    message_type: 'Query',
    allow: true,
    connection: { user: 'postgres', database: db, application_name: 'stmt-it' },
    redaction: { literals: true, parameters: true },
  });
  expect(insert[0]!.sql).toBe('INSERT INTO stmt_log_t VALUES ($1, $2), ($3, $4)');
  expect(insert[0]!.statements[0]).toMatchObject({ command: 'INSERT' });
  // Completion reported by the session core: command tags, rows, duration.
  expect(insert[0]).toMatchObject({ status: 'ok', command_tags: ['INSERT 0 2'], rows: 2, sqlstate: null });
  expect(insert[0]!.duration_ms).toBeGreaterThanOrEqual(0);
  const bind = statements.find((r) => r.message_type === 'Bind');
  expect(bind).toMatchObject({ status: 'ok', command_tags: ['SELECT 0'], rows: 0 });
  expect(bySql(/^SELECT \* FROM stmt_log_missing/)[0]).toMatchObject({
    status: 'error',
    sqlstate: '42P01',
    duration_ms: expect.any(Number),
  });
  expect(typeof insert[0]!.decision_id).toBe('string');

  expect(
    bySql(/^SELECT note FROM stmt_log_t WHERE note = \$1$/)
      .map((r) => r.message_type)
      .sort(),
  ).toEqual(['Bind', 'Query']);

  const denied = statements.filter((r) => !r.allow);
  expect(denied).toHaveLength(1);
  expect(denied[0]).toMatchObject({
    message_type: 'Query',
    sql: 'DELETE FROM stmt_log_t',
    status: 'denied',
    rule_ids: ['unbounded_write'],
  });
  const del = bySql(/^DELETE FROM stmt_log_t WHERE/);
  expect(del[0]!.sql).toBe('DELETE FROM stmt_log_t WHERE id = $1 OR note = $2');
  expect(del[0]).toMatchObject({ status: 'ok', command_tags: ['DELETE 1'], rows: 1 });

  const start = recs.find((r) => r.event === 'session_start' && r.connection.application_name === 'stmt-it');
  const end = recs.find((r) => r.event === 'session_end' && r.connection_id === start?.connection_id);
  expect(end).toMatchObject({
    outcome: expect.any(String),
    totals: { statements: 6, allowed: 5, denied: 1, errors: 1, rows: 4 },
  });

  // The decision log and the audit log name the same decision the same way.
  const decisions = readJsonl(path.join(dir, 'decisions.jsonl'));
  const audit = readJsonl(path.join(dir, 'audit.jsonl'));
  const auditDeny = audit.find((a) => a.decision_id === denied[0]!.decision_id);
  const logged = decisions.find((d) => d.decision_id === denied[0]!.decision_id);
  for (const r of [auditDeny, logged]) {
    expect(r).toBeDefined();
    validateEvent(r);
    expect(r).toMatchObject({
      connection_id: denied[0]!.connection_id,
      revision: denied[0]!.revision,
      rule_ids: denied[0]!.rule_ids,
    });
  }

  // Nothing pgward wrote holds a literal or a Bind value of the workload.
  const written = files(dir);
  expect(written.some((f) => f.includes(`${path.sep}capture${path.sep}`))).toBe(true);
  for (const f of written) {
    const text = fs.readFileSync(f, 'utf8');
    for (const secret of [LITERAL, BIND_VALUE, String(NUMBER)]) {
      expect({ file: path.relative(dir, f), found: text.includes(secret) }).toEqual({
        file: path.relative(dir, f),
        found: false,
      });
      // Captures hold frames in base64.
      expect(text.includes(Buffer.from(secret).toString('base64').slice(0, 12))).toBe(false);
    }
  }
  expect(gw.stdout.join('\n')).not.toContain(LITERAL);
});

test('a pipeline with an error in the middle, a multi-statement Query and a denied Parse, as the server answers them', async () => {
  const { gw, dir } = await gatewayWithLogs();
  const { client } = await RawClient.connect(gw.host, gw.port, {
    user: 'postgres',
    database: db,
    application_name: 'stmt-pipeline',
  });
  const run = (sql: string): Buffer[] => [encodeParse('', sql), encodeBind('', '', []), encodeExecute('')];
  client.send(
    ...run("INSERT INTO stmt_log_t VALUES (11, 'p')"),
    ...run('SELECT 1 / 0'),
    ...run('SELECT 2'),
    encodeSync(),
  );
  const first = await client.readUntilReady();
  // PostgreSQL folds 1 / 0 when it plans the unnamed statement, at Bind: the Bind fails.
  expect(first.map((m) => m.type).join('')).toBe('12C1EZ');
  expect(errorOf(first[4]!).code).toBe('22012');
  // A denied Parse in a pipeline: its sentinel's error is the policy's, and the server skips the rest.
  client.send(
    ...run('SELECT 3'),
    encodeParse('', 'DELETE FROM stmt_log_t'),
    encodeBind('', '', []),
    encodeExecute(''),
  );
  client.send(...run('SELECT 4'), encodeSync());
  const second = await client.readUntilReady();
  expect(second.map((m) => m.type).join('')).toBe('12DCEZ');
  expect(errorOf(second[4]!).code).toBe('42501');
  client.send(
    encodeQuery(
      "INSERT INTO stmt_log_t VALUES (12, 'q'); UPDATE stmt_log_t SET note = 'r' WHERE id IN (11, 12)",
    ),
  );
  await client.readUntilReady();
  client.send(encodeQuery('DELETE FROM stmt_log_t WHERE id IN (11, 12)'));
  await client.readUntilReady();
  client.socket.destroy();
  expect(await gw.stop()).toBe(0);

  const recs = readJsonl(path.join(dir, 'statements.jsonl'));
  for (const r of recs) validateEvent(r);
  const start = recs.find(
    (r) => r.event === 'session_start' && r.connection.application_name === 'stmt-pipeline',
  );
  const mine = recs.filter((r) => r.event === 'statement' && r.connection_id === start!.connection_id);
  // Written in the order they finish: a denial at once, an allowed statement at its last answer.
  // The INSERT answered INSERT 0 1; the error later in its implicit transaction rolled it back.
  expect(mine.map((r) => [r.message_type, r.sql, r.status, r.sqlstate, r.command_tags, r.rows])).toEqual([
    ['Bind', 'INSERT INTO stmt_log_t VALUES ($1, $2)', 'ok', null, ['INSERT 0 1'], 1],
    ['Bind', 'SELECT $1 / $2', 'error', '22012', [], null],
    ['Bind', 'SELECT $1', 'skipped', null, [], null],
    ['Parse', 'DELETE FROM stmt_log_t', 'denied', null, [], null],
    ['Bind', null, 'denied', null, [], null],
    ['Bind', 'SELECT $1', 'ok', null, ['SELECT 1'], 1],
    ['Bind', 'SELECT $1', 'skipped', null, [], null],
    [
      'Query',
      'INSERT INTO stmt_log_t VALUES ($1, $2); UPDATE stmt_log_t SET note = $3 WHERE id IN ($4, $5)',
      'ok',
      null,
      ['INSERT 0 1', 'UPDATE 1'],
      2,
    ],
    ['Query', 'DELETE FROM stmt_log_t WHERE id IN ($1, $2)', 'ok', null, ['DELETE 1'], 1],
  ]);
  expect(mine.filter((r) => r.status === 'error')).toHaveLength(1);
  for (const r of mine) {
    if (r.status !== 'skipped') expect(r.duration_ms).toBeGreaterThanOrEqual(0);
    else expect(r.duration_ms).toBeNull();
  }
  const end = recs.find((r) => r.event === 'session_end' && r.connection_id === start!.connection_id);
  expect(end).toMatchObject({ totals: { statements: 9, allowed: 7, denied: 2, errors: 1, rows: 5 } });
});

test('with audit.redact.literals false, the statement log has the SQL as sent', async () => {
  const { gw, dir } = await gatewayWithLogs({ audit: { redact: { literals: false } } });
  await workload(gw);
  expect(await gw.stop()).toBe(0);
  const recs = readJsonl(path.join(dir, 'statements.jsonl'));
  const insert = recs.find((r) => r.event === 'statement' && /^INSERT/.test(String(r.sql)));
  expect(insert!.sql).toBe(`INSERT INTO stmt_log_t VALUES (${NUMBER}, '${LITERAL}'), (2, 'x')`);
  expect(insert!.redaction).toEqual({ parameters: true, literals: false });
  validateEvent(insert);
});

test('/v1/bundle names the OPA version that built the bundle', async () => {
  const gw = await startGateway({ config: { audit: { sink: 'none' } } });
  const view = (await (await gw.admin('/v1/bundle')).json()) as Rec;
  const pinned = /github\.com\/open-policy-agent\/opa v([^\s]+)/.exec(
    fs.readFileSync(path.join(REPO, 'wasm-build', 'go.mod'), 'utf8'),
  )![1];
  expect(view.opa_version).toBe(pinned);
  await gw.stop();
});
