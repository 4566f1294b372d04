/**
 * Audit events written by the live gateway for a denied Query, a denied Parse and a denied Bind,
 * field by field, with redaction off and on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import {
  encodeBind,
  encodeExecute,
  encodeParse,
  encodeSync,
  readErrorFields,
} from '../../gateway/src/protocol';
import {
  REPO,
  buildBundleFromDir,
  startGateway,
  stopAllGateways,
  type RunningGateway,
} from '../helpers/gateway';
import { ensureLocalTestDb } from '../helpers/cluster';
import { RawClient, errorOf } from '../policy/raw-client';

type Rec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let db: string;

beforeAll(async () => {
  db = (await ensureLocalTestDb()).database;
  const c = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: db });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS audit_t (id int, secret text)');
  await c.end();
});

afterAll(stopAllGateways);

function auditOf(gw: RunningGateway, decisionId: string): Promise<Rec> {
  return gw.waitForLog(
    (l) => l.decision_id === decisionId && typeof l.kind === 'string',
    5000,
  ) as Promise<Rec>;
}

function decisionIdOf(detail: string | undefined): string {
  const m = /Decision ([\w-]+)\./.exec(detail ?? '');
  if (!m) throw new Error(`no decision id in ${detail}`);
  return m[1] as string;
}

async function deniedQuery(gw: RunningGateway, sql: string): Promise<{ err: Rec; audit: Rec }> {
  const c = new Client({
    host: gw.host,
    port: gw.port,
    user: 'postgres',
    database: db,
    application_name: 'audit-it',
  });
  await c.connect();
  const err = (await c.query(sql).then(
    () => {
      throw new Error('expected a denial');
    },
    (e: unknown) => e,
  )) as Rec;
  await c.end();
  return { err, audit: await auditOf(gw, decisionIdOf(err.detail)) };
}

async function deniedParse(gw: RunningGateway, sql: string): Promise<{ err: Rec; audit: Rec }> {
  const c = new Client({ host: gw.host, port: gw.port, user: 'postgres', database: db });
  await c.connect();
  const err = (await c.query({ name: 'audit_stmt', text: sql, values: [] }).then(
    () => {
      throw new Error('expected a denial');
    },
    (e: unknown) => e,
  )) as Rec;
  await c.end();
  return { err, audit: await auditOf(gw, decisionIdOf(err.detail)) };
}

/**
 * A Bind the policy denies: the shipped rules plus a site rule (`package pgward.custom`) that
 * refuses every Bind. (A Bind of a statement the server does not have is no policy decision any
 * more: the client gets the server's own 26000, tests/session/statements.test.ts.)
 */
async function denyBindBundle(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-deny-bind-'));
  fs.cpSync(path.join(REPO, 'rego'), dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'custom.rego'),
    'package pgward.custom\n\ndeny contains "test policy: every Bind is refused" if input.message.type == "Bind"\n',
  );
  return buildBundleFromDir(dir);
}

async function deniedBind(
  gw: RunningGateway,
  value: string,
): Promise<{ err: Rec; audit: Rec; frame: Buffer }> {
  const { client } = await RawClient.connect(gw.host, gw.port, { user: 'postgres', database: db });
  const bind = encodeBind('', 'audit_bind', [{ format: 0, value: Buffer.from(value) }]);
  client.send(encodeParse('audit_bind', 'SELECT $1::text', []), bind, encodeExecute(''), encodeSync());
  const msgs = await client.readUntilReady();
  client.socket.destroy();
  expect(msgs[0]?.type).toBe('1'); // ParseComplete: the statement exists, its Bind is what is refused
  const e = msgs.find((m) => m.type === 'E');
  if (!e) throw new Error('expected an ErrorResponse');
  const err = errorOf(e) as unknown as Rec;
  return { err, audit: await auditOf(gw, decisionIdOf(readErrorFields(e.frame).detail)), frame: bind };
}

describe('audit events, redaction off', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway({
      bundle: await denyBindBundle(),
      config: { audit: { sink: 'stdout', redact: { parameters: false, literals: false } } },
    });
  });

  it('records a denied Query with its full frame', async () => {
    const sql = "DELETE FROM audit_t -- 'x'";
    const { err, audit } = await deniedQuery(gw, sql);
    expect(err.code).toBe('42501');
    expect(audit.kind).toBe('deny');
    expect(audit.message_type).toBe('Query');
    expect(audit.revision).toEqual(expect.any(String));
    expect(audit.revision.length).toBeGreaterThan(0);
    expect(Date.parse(audit.timestamp)).not.toBeNaN();
    expect(audit.connection).toMatchObject({
      user: 'postgres',
      database: db,
      application_name: 'audit-it',
      client_addr: '127.0.0.1',
      tls: { enabled: false },
    });
    // The session's own id and port (the full document, whatever the bundle reads).
    expect(audit.connection.client_port).toBeGreaterThan(0);
    expect(audit.connection.id).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
    expect(audit.sql).toBe(sql);
    expect(audit.statements).toHaveLength(1);
    expect(audit.statements[0]).toMatchObject({
      command: 'DELETE',
      relations: [{ name: 'audit_t', access: 'write' }],
    });
    expect(audit.statements[0].fingerprint).toMatch(/^[0-9a-f]+$/);
    expect(audit.reasons[0]).toMatch(/DELETE without WHERE/);
    expect(err.message).toBe(`permission denied by policy: ${audit.reasons[0]}`);
    expect(audit.alerts).toEqual([]);
    expect(audit.error_code).toBeNull();
    const frame = Buffer.from(audit.frame.base64, 'base64');
    expect(frame[0]).toBe(0x51); // 'Q'
    expect(frame.subarray(5, frame.length - 1).toString()).toBe(sql);
    expect(audit.frame).toMatchObject({ length: frame.length, truncated: false, redacted: false });
  });

  it('records a denied Parse', async () => {
    const { err, audit } = await deniedParse(gw, 'TRUNCATE audit_t');
    expect(err.code).toBe('42501');
    expect(audit.message_type).toBe('Parse');
    expect(audit.sql).toBe('TRUNCATE audit_t');
    expect(audit.statements[0].command).toBe('TRUNCATE');
    const frame = Buffer.from(audit.frame.base64, 'base64');
    expect(frame[0]).toBe(0x50); // 'P'
    expect(frame.includes(Buffer.from('audit_stmt\0TRUNCATE audit_t\0'))).toBe(true);
  });

  it('records a denied Bind with its parameters', async () => {
    const { err, audit, frame } = await deniedBind(gw, 'hunter2');
    expect(err.code).toBe('42501');
    expect(err.message).toBe(`permission denied by policy: ${audit.reasons[0]}`);
    expect(audit.message_type).toBe('Bind');
    expect(audit.parameters).toEqual([expect.objectContaining({ value: 'hunter2', format: 'text' })]);
    expect(Buffer.from(audit.frame.base64, 'base64').equals(frame)).toBe(true);
  });
});

describe('audit events, redaction on', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway({
      bundle: await denyBindBundle(),
      config: { audit: { sink: 'stdout', redact: { parameters: true, literals: true } } },
    });
  });

  it('normalizes SQL literals and withholds the Query frame body', async () => {
    const { audit } = await deniedQuery(gw, "UPDATE audit_t SET secret = 'hunter2'");
    expect(audit.message_type).toBe('Query');
    expect(JSON.stringify(audit)).not.toContain('hunter2');
    expect(audit.sql).toMatch(/SET secret = \$1/);
    expect(audit.frame).toMatchObject({ base64: null, redacted: true });
    expect(audit.frame.length).toBeGreaterThan(0);
    expect(audit.redaction).toEqual({ parameters: true, literals: true });
  });

  it('redacts the literal of text the parser rejects (an unterminated string)', async () => {
    // libpg-query's normalizeSync returns this scanner error as text, quoting the literal.
    const { err, audit } = await deniedQuery(gw, "SELECT 'hunter2");
    expect(err.code).toBe('42601');
    expect(JSON.stringify(audit)).not.toContain('hunter2');
    // The literal's content goes, its quote stays: the text is as unparseable as it was.
    expect(audit.sql).toBe("SELECT '");
    // Nor does the process log's line of the denial.
    const line = await gw.waitForLog((l) => l.msg === 'denied' && l.decision === audit.decision_id);
    expect(JSON.stringify(line)).not.toContain('hunter2');
    expect(JSON.stringify(line)).toContain('at or near [REDACTED]');
  });

  it('redacts Parse literals', async () => {
    const { audit } = await deniedParse(gw, 'DELETE FROM audit_t -- hunter2\n');
    expect(audit.message_type).toBe('Parse');
    expect(audit.frame.base64).toBeNull();
  });

  it('redacts Bind parameter values', async () => {
    const { audit } = await deniedBind(gw, 'hunter2');
    expect(audit.message_type).toBe('Bind');
    expect(JSON.stringify(audit)).not.toContain('hunter2');
    expect(audit.parameters).toEqual([expect.objectContaining({ value: '[REDACTED]' })]);
    expect(audit.frame.base64).toBeNull();
  });
});
