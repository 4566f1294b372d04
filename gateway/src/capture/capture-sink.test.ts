import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  encodeBind,
  encodeParse,
  encodeQuery,
  encodeReadyForQuery,
  encodeStartupMessage,
  PROTOCOL_3_0,
  readBind,
  readFrontendMessage,
  readQuery,
} from '../protocol';
import { encodeCopyFail, encodePasswordMessage } from '../protocol/frontend/simple-messages';
import { initSqlParser } from '../sql';
import { ErrorCodes } from '../errors';
import { encodeErrorResponse, readErrorFields, readErrorResponse } from '../protocol/backend/error-response';
import type { ConnectionInfo } from '../policy/types';
import { CaptureSink, type CaptureSinkOptions } from './capture-sink';

let dir = '';
beforeAll(() => initSqlParser());
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-capture-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function conn(id: string, over: Partial<ConnectionInfo> = {}): ConnectionInfo {
  return {
    id,
    client_addr: '127.0.0.1',
    client_port: 5555,
    tls: { enabled: false, version: null, cipher: null, client_cert_subject: null },
    user: 'alice',
    database: 'app',
    application_name: 'psql',
    parameters: { user: 'alice', database: 'app' },
    options: {},
    protocol_version: '3.0',
    authenticated: false,
    transaction_status: 'I',
    ...over,
  };
}

function opts(over: Partial<CaptureSinkOptions> = {}): CaptureSinkOptions {
  return {
    dir,
    users: [],
    databases: [],
    applications: [],
    max_file_bytes: 1 << 20,
    max_file_age_s: 3600,
    redact: { parameters: false, literals: false },
    maxSqlBytesInInput: 1024,
    ...over,
  };
}

/** One session's worth of observer calls. */
function session(sink: CaptureSink, c: ConnectionInfo, frames: Buffer[]): void {
  sink.onFrame('frontend', encodeStartupMessage(PROTOCOL_3_0, [['user', c.user]]), c);
  sink.onFrame('frontend', encodePasswordMessage(Buffer.from('hunter2\0')), c); // never handed in practice
  sink.onFrame('backend', encodeReadyForQuery('I'), c);
  c.authenticated = true;
  for (const f of frames) {
    // As the session hands them: decoded once, a Query's or Parse's text with it.
    const m = readFrontendMessage({ type: f[0]!, bytes: f, bodyOffset: 5 });
    const sql = m.name === 'Query' || m.name === 'Parse' ? m.sqlBytes.toString('utf8') : undefined;
    sink.onFrame('frontend', f, c, m, sql);
  }
  sink.onConnectionClosed('client_terminated', c);
}

function records(): Array<Record<string, unknown>> {
  return fs
    .readdirSync(dir)
    .sort()
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('writes header, connection, frames, auth and close; never a password', async () => {
  const sink = new CaptureSink(opts());
  sink.start();
  session(sink, conn('c1'), [encodeQuery('SELECT 1'), encodePasswordMessage(Buffer.from('x\0'))]);
  await sink.stop();
  const rs = records();
  expect(rs[0]).toMatchObject({ format: 'pgward-capture', version: 1, max_sql_bytes_in_input: 1024 });
  expect(rs.slice(1).map((r) => r.ev ?? r.dir)).toEqual(['connection', 'F', 'auth', 'B', 'F', 'close']);
  expect(JSON.stringify(rs)).not.toContain(Buffer.from('hunter2').toString('base64').slice(0, 8));
  expect(rs[5]).toMatchObject({ ts: 'I' });
});

test('filters by user, database and application', async () => {
  const sink = new CaptureSink(opts({ users: ['alice'], applications: ['app'] }));
  sink.start();
  session(sink, conn('a', { application_name: 'app' }), [encodeQuery('SELECT 1')]);
  session(sink, conn('b', { user: 'bob', application_name: 'app' }), [encodeQuery('SELECT 2')]);
  session(sink, conn('c', { application_name: 'psql' }), [encodeQuery('SELECT 3')]);
  await sink.stop();
  expect(
    new Set(
      records()
        .slice(1)
        .map((r) => r.conn),
    ),
  ).toEqual(new Set(['a']));
});

test('redaction re-encodes Query/Parse with normalized SQL and Bind values', async () => {
  const sink = new CaptureSink(opts({ redact: { literals: true, parameters: true } }));
  sink.start();
  session(sink, conn('r'), [
    encodeQuery("SELECT * FROM t WHERE secret = 'hunter2'"),
    encodeParse('s', "SELECT 'hunter2'", []),
    encodeBind('', 's', [{ format: 0, value: Buffer.from('hunter2') }]),
  ]);
  await sink.stop();
  const frames = records()
    .filter((r) => r.dir === 'F' && r.ts)
    .map((r) => Buffer.from(String(r.frame), 'base64'));
  expect(readQuery(frames[0]!).sqlBytes.toString()).toBe('SELECT * FROM t WHERE secret = $1');
  expect(frames[1]!.toString()).not.toContain('hunter2');
  expect(readBind(frames[2]!).params[0]!.value!.toString()).toBe('[REDACTED]');
});

test('a Query or Parse the session refused to read is recorded with its refusal; redacted, its text is withheld', async () => {
  const refusal = {
    ok: false as const,
    code: ErrorCodes.SQL_LEXICAL_STRING_SYNTAX,
    reason: 'backslash under standard_conforming_strings off',
    sqlstate: '0A000',
  };
  const unread = { code: refusal.code, reason: refusal.reason, sqlstate: refusal.sqlstate };
  const frames = [encodeQuery("SELECT 'hunter\\2'"), encodeParse('s', "SELECT 'hunter\\2'", [25])];
  for (const literals of [true, false]) {
    fs.rmSync(dir, { recursive: true, force: true });
    const sink = new CaptureSink(opts({ redact: { literals, parameters: false } }));
    sink.start();
    const c = conn(`u${String(literals)}`);
    sink.onFrame('frontend', encodeStartupMessage(PROTOCOL_3_0, [['user', c.user]]), c);
    sink.onFrame('backend', encodeReadyForQuery('I'), c);
    c.authenticated = true;
    // As the session hands a refused text: sql '' and the refusal.
    for (const f of frames)
      sink.onFrame(
        'frontend',
        f,
        c,
        readFrontendMessage({ type: f[0]!, bytes: f, bodyOffset: 5 }),
        '',
        refusal,
      );
    await sink.stop();
    const written = records().filter((r) => r.dir === 'F' && r.ts);
    expect(written.map((r) => r.unread)).toEqual([unread, unread]);
    const [q, p] = written.map((r) => Buffer.from(String(r.frame), 'base64'));
    if (literals) {
      expect(readQuery(q!).sqlBytes.toString()).toBe('');
      const parse = readFrontendMessage({ type: p![0]!, bytes: p!, bodyOffset: 5 });
      expect(parse.name === 'Parse' && [parse.statement, parse.sqlBytes.length, parse.paramTypes]).toEqual([
        's',
        0,
        [25],
      ]);
    } else {
      expect([q, p]).toEqual(frames);
    }
  }
});

test('with redaction, a server error is written with its severity and SQLSTATE only', async () => {
  const err = encodeErrorResponse({
    severity: 'ERROR',
    code: '22P02',
    message: 'invalid input syntax for type integer: "hunter2"',
    detail: 'Key (email)=(hunter2@example.com) already exists.',
  });
  for (const redact of [true, false]) {
    fs.rmSync(dir, { recursive: true, force: true });
    const sink = new CaptureSink(opts({ redact: { literals: redact, parameters: redact } }));
    sink.start();
    const c = conn(`e${String(redact)}`);
    sink.onFrame('frontend', encodeStartupMessage(PROTOCOL_3_0, [['user', c.user]]), c);
    sink.onFrame('backend', encodeReadyForQuery('I'), c);
    c.authenticated = true;
    // As the session hands it: decoded once.
    sink.onFrame('backend', err, c, readErrorResponse(err));
    await sink.stop();
    const [written] = records()
      .filter((r) => r.dir === 'B')
      .map((r) => Buffer.from(String(r.frame), 'base64'))
      .filter((f) => f[0] === 0x45);
    if (redact) {
      expect(written!.toString('latin1')).not.toContain('hunter2');
      expect(readErrorFields(written!)).toMatchObject({
        severity: 'ERROR',
        code: '22P02',
        message: '[REDACTED]',
      });
    } else {
      expect(written).toEqual(err);
    }
  }
});

test('with parameters redacted, a CopyFail message is withheld (a driver may quote the row)', async () => {
  const sink = new CaptureSink(opts({ redact: { literals: false, parameters: true } }));
  sink.start();
  session(sink, conn('cf'), [encodeCopyFail('bad row: hunter2,42')]);
  await sink.stop();
  const frames = records()
    .filter((r) => r.dir === 'F' && r.ts)
    .map((r) => Buffer.from(String(r.frame), 'base64'));
  expect(frames).toEqual([encodeCopyFail('[REDACTED]')]);
});

test('rotates by size; drops and marks connections when the stream falls behind', async () => {
  const sink = new CaptureSink(opts({ max_file_bytes: 512 }));
  sink.start();
  session(
    sink,
    conn('big'),
    Array.from({ length: 40 }, (_, i) => encodeQuery(`SELECT ${i}`)),
  );
  await sink.stop();
  // More than nine files: their names still sort in the order they were written.
  expect(fs.readdirSync(dir).length).toBeGreaterThan(9);
  const frontend = records().filter((r) => r.dir === 'F');
  expect(frontend).toHaveLength(41);
  expect(
    frontend.slice(1).map((r) => readQuery(Buffer.from(String(r.frame), 'base64')).sqlBytes.toString()),
  ).toEqual(Array.from({ length: 40 }, (_, i) => `SELECT ${i}`));

  fs.rmSync(dir, { recursive: true, force: true });
  const slow = new CaptureSink(opts({ maxBufferedBytes: 200 }));
  slow.start();
  session(
    slow,
    conn('slow'),
    Array.from({ length: 200 }, (_, i) => encodeQuery(`SELECT ${i}`)),
  );
  expect(slow.stats().records_dropped).toBeGreaterThan(0);
  await slow.stop();
});
