/**
 * SessionCore scenarios: client and server bytes in, actions and bytes out, no sockets or timers.
 * Server answers are those PostgreSQL 15 gives (postgres.c: exec_parse/bind/execute_message and
 * the skip-until-Sync after an error; exec_simple_query drops the unnamed statement; a named
 * Parse of an existing name fails 42P05; Close of a missing name answers CloseComplete).
 */
import {
  encodeBind,
  encodeCancelRequest,
  encodeClose,
  encodeCopyData,
  encodeCopyDone,
  encodeCopyFail,
  encodeDescribe,
  encodeExecute,
  encodeFunctionCall,
  encodeGSSENCRequest,
  encodeParse,
  encodeQuery,
  encodeSSLRequest,
  encodeStartupMessage,
  encodeSync,
  encodeTerminate,
  BodyReader,
  MessageWriter,
  PROTOCOL_3_0,
  PROTOCOL_3_2,
} from '../protocol';
import { initSqlParser } from '../sql';
import * as lexical from '../sql/lexical';
import { CancelRegistry } from './cancel-registry';
import {
  Harness,
  fields,
  messages,
  missingStatementFor,
  pg,
  syntaxErrorFor,
  types,
  type Msg,
} from './core-harness.test-helper';

const P = (name: string, sql: string): Buffer => encodeParse(name, sql);
const B = (stmt: string, portal = ''): Buffer => encodeBind(portal, stmt, []);
const E = (portal = ''): Buffer => encodeExecute(portal);
const S = (): Buffer => encodeSync();
const Q = (sql: string): Buffer => encodeQuery(sql);
const CloseS = (name: string): Buffer => encodeClose('S', name);

beforeAll(async () => {
  await initSqlParser();
});

/** The messages decoded (BodyReader#done's names) while `run` runs. */
function decodes(run: () => void): string[] {
  const spy = jest.spyOn(BodyReader.prototype, 'done');
  try {
    run();
    return spy.mock.calls.map((c) => c[0]);
  } finally {
    spy.mockRestore();
  }
}

function ready(): Harness {
  const h = new Harness();
  h.login();
  return h;
}

/** Sends a pipeline whose messages all succeed on the server, with the answers PostgreSQL gives. */
function ok(h: Harness, frames: Buffer[], answers: Buffer[]): Msg[] {
  h.client(...frames);
  return h.server(...answers).down;
}

const errorText = (m: Msg | undefined): Record<string, string> => (m ? fields(m) : {});

// ==================================================================== startup

describe('startup', () => {
  it('tells the client the backend’s real pid with a 4-byte secret of its own (protocol 3.0)', () => {
    const reg = new CancelRegistry();
    const h = new Harness({}, reg);
    const upstreamSecret = Buffer.from([9, 9, 9, 9]);
    const down = h.login('app', 777, upstreamSecret);
    const k = down.find((m) => m.type === 'K')!;
    expect(k.body.readInt32BE(0)).toBe(777);
    const secret = k.body.subarray(4);
    expect(secret).toHaveLength(4);
    expect(secret.equals(upstreamSecret)).toBe(false);
    expect(reg.lookup(777, Buffer.from(secret))).toBe(h.cancelTarget);
    expect(reg.lookup(777, upstreamSecret)).toBeUndefined();
    expect(h.core.requests.cancelKey).toEqual({ processId: 777, secretKey: upstreamSecret });
  });

  it('gives a 3.2 client a 32-byte secret, and never fewer bytes than the upstream’s', () => {
    for (const [upstreamLen, expected] of [
      [32, 32],
      [40, 40],
      [4, 32],
    ] as const) {
      const h = new Harness();
      h.client(encodeStartupMessage(PROTOCOL_3_2, new Map([['user', 'app']])));
      h.core.upstreamConnected({ tls: false, channelBindingHonoured: false });
      h.take();
      const down = h.server(pg.authOk(), pg.keyData(5, Buffer.alloc(upstreamLen, 1)), pg.ready()).down;
      expect(down.find((m) => m.type === 'K')!.body.length - 4).toBe(expected);
    }
  });

  it('honours a CancelRequest only with the key it issued, and answers none', () => {
    const reg = new CancelRegistry();
    const a = new Harness({}, reg);
    const k = a.login('app', 321, Buffer.from([1, 1, 1, 1])).find((m) => m.type === 'K')!;
    const secret = Buffer.from(k.body.subarray(4));
    const good = new Harness({}, reg);
    const r = good.client(encodeCancelRequest(321, secret));
    expect(r.actions.filter((x) => x.kind === 'cancel')).toEqual([
      { kind: 'cancel', target: a.cancelTarget },
    ]);
    expect(r.down).toEqual([]);
    expect(good.closed).toEqual(['cancel_request']);
    for (const bad of [Buffer.from([1, 1, 1, 1]), Buffer.from([0, 0, 0, 0])]) {
      const h = new Harness({}, reg);
      const x = h.client(encodeCancelRequest(321, bad));
      expect(x.actions.some((y) => y.kind === 'cancel')).toBe(false);
      expect(x.actions.some((y) => y.kind === 'endClient')).toBe(true);
    }
  });

  it('forgets the key when the session ends', () => {
    const reg = new CancelRegistry();
    const h = new Harness({}, reg);
    const k = h.login('app', 55).find((m) => m.type === 'K')!;
    h.client(encodeTerminate());
    expect(reg.lookup(55, Buffer.from(k.body.subarray(4)))).toBeUndefined();
  });

  it('keeps the key of a client that left with a query running until the upstream is gone (pgx: cancel, then Terminate)', () => {
    const reg = new CancelRegistry();
    const h = new Harness({}, reg);
    const k = h.login('app', 56).find((m) => m.type === 'K')!;
    const secret = Buffer.from(k.body.subarray(4));
    h.client(Q('SELECT pg_sleep(30)'), encodeTerminate());
    h.core.clientClosed('client_terminated');
    // The backend still runs the query: a cancel sent just before the client left must reach it.
    expect(reg.lookup(56, secret)).toBe(h.cancelTarget);
    h.core.upstreamClosed();
    expect(reg.lookup(56, secret)).toBeUndefined();
  });

  it('judges user and database names cut to 63 bytes, and forwards them as sent', () => {
    const h = new Harness();
    const long = 'u'.repeat(70);
    const r = h.client(
      encodeStartupMessage(
        PROTOCOL_3_0,
        new Map([
          ['user', long],
          ['database', `d${long}`],
        ]),
      ),
    );
    expect(h.core.conn.user).toBe('u'.repeat(63));
    expect(h.core.conn.database).toBe(`d${'u'.repeat(62)}`);
    expect(h.engine.inputs[0]!.connection.user).toHaveLength(63);
    const connect = r.actions.find((a) => a.kind === 'connectUpstream');
    expect(connect && connect.kind === 'connectUpstream' && connect.startup.includes(Buffer.from(long))).toBe(
      true,
    );
  });

  it('cuts a multibyte name at byte 63 as PostgreSQL 15 does (not at a character boundary)', () => {
    const h = new Harness();
    const name = 'é'.repeat(40); // 80 bytes: byte 63 falls inside the 32nd character
    h.client(encodeStartupMessage(PROTOCOL_3_0, new Map([['user', name]])));
    expect(
      Buffer.from(h.core.conn.user)
        .subarray(0, 62)
        .equals(Buffer.from('é'.repeat(31))),
    ).toBe(true);
    expect(h.core.conn.user.startsWith('é'.repeat(31))).toBe(true);
    expect(h.core.conn.user).not.toBe('é'.repeat(31));
  });

  it('closes silently on an invalid startup length, as PostgreSQL does', () => {
    const h = new Harness();
    const bad = Buffer.alloc(8);
    bad.writeInt32BE(4, 0); // below the minimum
    const r = h.client(bad);
    expect(r.down).toEqual([]);
    expect(r.actions.map((a) => a.kind)).toEqual(expect.arrayContaining(['endClient']));
    expect(r.actions.some((a) => a.kind === 'writeClient')).toBe(false);
  });

  it('refuses a full server after TLS is negotiated, in TLS, with PostgreSQL’s text', () => {
    const h = new Harness({ refusal: 'max_clients', tls: true });
    const r1 = h.client(encodeSSLRequest());
    expect(r1.actions.map((a) => a.kind)).toEqual(['startTls']);
    h.core.tlsEstablished({ version: 'TLSv1.3', cipher: 'x', clientCertSubject: null });
    h.take();
    const r2 = h.client(encodeStartupMessage(PROTOCOL_3_0, new Map([['user', 'app']])));
    expect(types(r2.down)).toBe('E');
    expect(errorText(r2.down[0])).toMatchObject({
      S: 'FATAL',
      C: '53300',
      M: 'sorry, too many clients already',
    });
    expect(h.closed).toEqual(['rejected_limit']);
    expect(h.deps.unauthenticated.count).toBe(0);
  });

  it('refuses over max_unauthenticated after answering a plain SSLRequest N', () => {
    const h = new Harness({ refusal: 'max_unauthenticated' });
    expect(types(h.client(encodeSSLRequest()).down)).toBe('N');
    const r = h.client(encodeStartupMessage(PROTOCOL_3_0, new Map([['user', 'app']])));
    expect(errorText(r.down[0])).toMatchObject({ C: '53300', M: 'sorry, too many clients already' });
    expect(h.errors).toEqual(['PGWARD_ERR_LIMIT_UNAUTHENTICATED']);
  });

  it('still honours a CancelRequest while refusing (PostgreSQL reads it before the limit check)', () => {
    const reg = new CancelRegistry();
    const a = new Harness({}, reg);
    const k = a.login('app', 99).find((m) => m.type === 'K')!;
    const h = new Harness({ refusal: 'max_clients' }, reg);
    const r = h.client(encodeCancelRequest(99, Buffer.from(k.body.subarray(4))));
    expect(r.actions.some((x) => x.kind === 'cancel')).toBe(true);
  });

  it('answers GSSENCRequest N, and refuses unencrypted bytes after an SSLRequest', () => {
    const h = new Harness();
    expect(types(h.client(encodeGSSENCRequest()).down)).toBe('N');
    const t = new Harness({ tls: true });
    const r = t.client(encodeSSLRequest(), Buffer.from('junk'));
    expect(errorText(r.down[0])).toMatchObject({
      C: '08P01',
      M: 'received unencrypted data after SSL request',
    });
  });

  it('ends the login timeout and the unauthenticated count at AuthenticationOk', () => {
    const h = new Harness();
    expect(h.actions.map((a) => a.kind)).toEqual(['startLoginTimer']);
    h.client(encodeStartupMessage(PROTOCOL_3_0, new Map([['user', 'app']])));
    h.core.upstreamConnected({ tls: false, channelBindingHonoured: false });
    expect(h.deps.unauthenticated.count).toBe(1);
    const r = h.server(pg.authOk());
    expect(r.actions.map((a) => a.kind)).toEqual(['stopLoginTimer', 'writeClient']);
    expect(h.deps.unauthenticated.count).toBe(0);
    // A slow backend start after authentication is not cut off.
    h.core.loginTimerFired();
    expect(h.take()).toEqual([]);
    expect(types(h.server(pg.keyData(1, Buffer.alloc(4)), pg.ready()).down)).toBe('KZ');
    expect(h.core.phase).toBe('ready');
  });

  it('times out a client that has not authenticated', () => {
    const h = new Harness();
    h.client(encodeStartupMessage(PROTOCOL_3_0, new Map([['user', 'app']])));
    h.core.loginTimerFired();
    const r = h.split(h.take());
    expect(errorText(r.down[0])).toMatchObject({
      S: 'FATAL',
      C: '08P01',
      M: 'pgward: authentication timed out',
    });
    expect(h.closed).toEqual(['login_timeout']);
  });

  it('refuses a startup the policy denies, without connecting upstream', () => {
    const h = new Harness();
    const r = h.client(encodeStartupMessage(PROTOCOL_3_0, new Map([['user', 'mallory']])));
    expect(errorText(r.down[0])).toMatchObject({ S: 'FATAL', C: '28000' });
    expect(r.actions.some((a) => a.kind === 'connectUpstream')).toBe(false);
  });

  it('allows only the password exchange before the first ReadyForQuery', () => {
    const h = new Harness();
    h.client(encodeStartupMessage(PROTOCOL_3_0, new Map([['user', 'app']])));
    h.core.upstreamConnected({ tls: false, channelBindingHonoured: false });
    h.take();
    const r = h.client(Q('SELECT 1'));
    expect(r.up).toEqual([]);
    expect(errorText(r.down[0])).toMatchObject({ S: 'FATAL', C: '08P01' });
  });

  it('records every ParameterStatus the server sends, read-only', () => {
    const h = ready();
    expect(h.core.serverParameters.get('client_encoding')).toBe('UTF8');
    ok(
      h,
      [Q("SET client_encoding = 'LATIN1'")],
      [pg.complete('SET'), pg.param('client_encoding', 'LATIN1'), pg.ready()],
    );
    expect(h.core.serverParameters.get('client_encoding')).toBe('LATIN1');
  });
});

// ==================================================================== forwarding

describe('forwarding', () => {
  it('forwards an allowed pipeline byte for byte in one upstream write', () => {
    const h = ready();
    const frames = [P('', 'SELECT 1'), B(''), E(), S()];
    const chunk = Buffer.concat(frames);
    h.core.clientData(chunk);
    const writes = h.take().filter((a) => a.kind === 'writeUpstream');
    expect(writes).toHaveLength(1);
    const w = writes[0]!;
    expect(w.kind === 'writeUpstream' && Buffer.concat(w.data).equals(chunk)).toBe(true);
    expect(w.kind === 'writeUpstream' && w.data).toHaveLength(1);
    // Written as it came: the read's own buffer, not a copy nor a new view of it.
    expect(w.kind === 'writeUpstream' && w.data[0]).toBe(chunk);
  });

  it('writes the allowed frames around a denied one as views of the read, in order, in one write', () => {
    const h = ready();
    const frames = [P('a', 'SELECT 1'), P('x', 'DELETE FROM t'), P('c', 'SELECT 3'), S()];
    const chunk = Buffer.concat(frames);
    h.core.clientData(chunk);
    const writes = h.take().filter((a) => a.kind === 'writeUpstream');
    expect(writes).toHaveLength(1);
    const data = writes[0]!.kind === 'writeUpstream' ? writes[0]!.data : [];
    expect(data).toHaveLength(3);
    expect(data[0]!.equals(frames[0]!)).toBe(true);
    expect(data[1]!.toString()).toContain('pgward_denied_');
    expect(data[2]!.equals(Buffer.concat([frames[2]!, frames[3]!]))).toBe(true);
    expect(data[2]!.buffer).toBe(chunk.buffer);
  });

  it('passes DataRow through as the chunk it came in, unread', () => {
    const h = ready();
    h.client(Q('SELECT 1'));
    const chunk = Buffer.concat([
      pg.rowDescription(),
      pg.dataRow('1'),
      pg.dataRow('2'),
      pg.complete('SELECT 2'),
      pg.ready(),
    ]);
    h.core.serverData(chunk);
    const w = h.take().find((a) => a.kind === 'writeClient');
    expect(w && w.kind === 'writeClient' && w.data.every((b) => b.buffer === chunk.buffer)).toBe(true);
  });

  it('needs no answer for Flush, and is idle after every answer', () => {
    const h = ready();
    h.client(P('s', 'SELECT 1'), encodeFlush());
    expect(h.core.isIdle).toBe(false);
    h.server(pg.parseComplete());
    expect(h.core.isIdle).toBe(true);
  });

  it.each([
    ['a ReadyForQuery with a bad status', new MessageWriter().int8(0x58).message('Z')],
    ['a ReadyForQuery with a trailing byte', new MessageWriter().int8(0x49).int8(0).message('Z')],
    [
      'a CommandComplete without its terminator',
      new MessageWriter().bytes(Buffer.from('SELECT 1')).message('C'),
    ],
    ['a CommandComplete with trailing bytes', new MessageWriter().cstring('SELECT 1').int8(7).message('C')],
    ['an empty CommandComplete', new MessageWriter().message('C')],
  ])('closes with 08P01 on %s, read in place (no tag wanted)', (_what, bad) => {
    for (const extended of [false, true]) {
      const h = ready();
      if (extended) {
        h.client(P('', 'SELECT 1'), B(''), E(), S());
        h.server(pg.parseComplete(), pg.bindComplete());
      } else h.client(Q('SELECT 1'));
      // Neither answer is decoded: it is refused in place, and nothing of its read goes on.
      let r: ReturnType<Harness['server']> | undefined;
      expect(decodes(() => (r = h.server(pg.rowDescription(), pg.dataRow('1'), bad)))).toEqual([]);
      expect(r!.down.map((m) => m.type)).toEqual(['E']);
      expect(errorText(r!.down[0])).toMatchObject({ C: '08P01' });
      expect(h.errors).toContain('PGWARD_ERR_UPSTREAM_PROTOCOL');
    }
  });

  it('reads the tag of a CommandComplete only when it confirms something (PREPARE)', () => {
    const h = ready();
    h.client(Q('PREPARE p AS SELECT 1'));
    h.server(pg.complete('PREPARE'), pg.ready());
    // The server confirmed p by its tag: a Bind of it is judged at once, not held.
    h.client(B('p'), E(), S());
    expect(h.core.requests.resolve('p')).not.toBe('absent');
    // Without the tag read, the PREPARE would not have been confirmed.
    const g = ready();
    g.client(Q('PREPARE p AS SELECT 1'));
    g.server(pg.complete('SELECT 1'), pg.ready());
    expect(g.core.requests.resolve('p')).toBe('absent');
  });

  it('reconciles a pipeline answered part-way, then sent on, on reused slots', () => {
    const h = ready();
    h.client(P('a', 'SELECT 1'), S(), P('b', 'SELECT 1'), S());
    h.server(pg.parseComplete(), pg.ready());
    expect(h.core.requests.outstanding).toBe(2);
    h.client(P('c', 'SELEC 1'), P('d', 'SELECT 1'), S(), P('e', 'SELECT 1'), S());
    h.server(pg.parseComplete(), pg.ready(), pg.error('42601', 'syntax error'), pg.ready());
    h.server(pg.parseComplete(), pg.ready());
    expect(['a', 'b', 'c', 'd', 'e'].map((n) => h.core.requests.resolve(n) === 'absent')).toEqual([
      false,
      false,
      true,
      true,
      false,
    ]);
    expect(h.core.isIdle).toBe(true);
  });

  it('reconciles a pipeline deeper than its kept slots, then the next ones on reused slots', () => {
    const h = ready();
    const names = Array.from({ length: 100 }, (_, i) => `s${i}`);
    h.client(...names.map((n) => P(n, 'SELECT 1')), S());
    h.server(...names.map(() => pg.parseComplete()), pg.ready());
    expect(h.core.isIdle).toBe(true);
    for (const n of ['s0', 's50', 's99']) expect(h.core.requests.resolve(n)).not.toBe('absent');
    // On reused slots: a failed Parse, one skipped to the Sync, then a cycle that succeeds.
    h.client(P('x', 'SELEC 1'), P('y', 'SELECT 1'), S(), P('z', 'SELECT 1'), S());
    h.server(pg.error('42601', 'syntax error'), pg.ready(), pg.parseComplete(), pg.ready());
    expect(h.core.requests.resolve('x')).toBe('absent');
    expect(h.core.requests.resolve('y')).toBe('absent');
    expect(h.core.requests.resolve('z')).not.toBe('absent');
    expect(h.core.isIdle).toBe(true);
    // An answer nobody asked for is still one, however many slots are kept.
    const r = h.server(pg.parseComplete());
    expect(errorText(r.down.find((m) => m.type === 'E'))).toMatchObject({ C: '08P01' });
  });

  it('closes with 08P01 on an answer nobody asked for', () => {
    const h = ready();
    const r = h.server(pg.parseComplete());
    expect(errorText(r.down.find((m) => m.type === 'E'))).toMatchObject({ C: '08P01' });
    expect(h.errors).toContain('PGWARD_ERR_UPSTREAM_PROTOCOL');
  });

  it('follows Describe (ParameterDescription + RowDescription or NoData) and PortalSuspended', () => {
    const h = ready();
    h.client(
      P('s', 'SELECT 1'),
      encodeDescribe('S', 's'),
      B('s'),
      encodeDescribe('P', ''),
      encodeExecute('', 1),
      S(),
    );
    h.server(pg.parseComplete(), pg.paramDescription(), pg.rowDescription(), pg.bindComplete(), pg.noData());
    h.server(pg.dataRow('1'), pg.portalSuspended(), pg.ready('T'));
    expect(h.core.isIdle).toBe(false); // in a transaction
    expect(h.core.requests.outstanding).toBe(0);
  });
});

// ==================================================================== statements confirmed by the server

describe('statements as the server confirms them', () => {
  it('does not record a named Parse the server rejects: re-preparing the name works (node-postgres)', () => {
    const h = ready();
    h.client(P('s', 'SELEC 1'), S());
    h.server(pg.error('42601', 'syntax error at or near "SELEC"'), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('s')).toBeUndefined();
    const r = h.client(P('s', 'SELECT 1'), B('s'), E(), S());
    expect(types(r.up)).toBe('PBES');
    expect(r.up[1]!.body.equals(B('s').subarray(5))).toBe(true);
  });

  it('records a Parse of the empty query; its Bind goes and Execute answers EmptyQueryResponse', () => {
    const h = ready();
    const down = ok(
      h,
      [P('e', ''), B('e'), E(), S()],
      [pg.parseComplete(), pg.bindComplete(), pg.emptyQuery(), pg.ready()],
    );
    expect(types(down)).toBe('12IZ');
    expect(h.core.requests.namespace.confirmedEntry('e')).toMatchObject({ ref: { sql: '' } });
    expect(types(h.client(B('e'), E(), S()).up)).toBe('BES');
  });

  it('applies no Close the server skipped: the older statement of that name is still judged', () => {
    const h2 = ready();
    ok(h2, [P('s', 'SELECT 1'), S()], [pg.parseComplete(), pg.ready()]);
    // An error, then a Close the server skips.
    h2.client(P('bad', 'SELEC'), CloseS('s'), S());
    h2.server(pg.error('42601', 'syntax error'), pg.ready());
    expect(h2.core.requests.namespace.confirmedEntry('s')).toMatchObject({ ref: { sql: 'SELECT 1' } });
    // Parse s again fails 42P05 on the server; Bind s runs the old SELECT 1.
    h2.client(P('s', 'DELETE FROM t'), S());
    h2.server(pg.error('42P05', 'prepared statement "s" already exists'), pg.ready());
    const r = h2.client(B('s'), E(), S());
    expect(types(r.up)).toBe('BES');
    expect(h2.engine.inputs.at(-1)!.message.statement!.sql).toBe('SELECT 1');
  });

  it('records nothing for a PREPARE the policy denied (the sentinel ran instead)', () => {
    const h = ready();
    const r = h.client(Q('PREPARE s AS DELETE FROM t'));
    h.server(syntaxErrorFor(r.up[0]!), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('s')).toBeUndefined();
  });

  it('applies a Close the server confirmed', () => {
    const h = ready();
    ok(h, [P('s', 'SELECT 1'), S()], [pg.parseComplete(), pg.ready()]);
    ok(h, [CloseS('s'), S()], [pg.closeComplete(), pg.ready()]);
    expect(h.core.requests.namespace.confirmedEntry('s')).toBeUndefined();
  });

  it('answers a Close of a missing name as the server does (CloseComplete), changing nothing', () => {
    const h = ready();
    expect(types(ok(h, [CloseS('nope'), S()], [pg.closeComplete(), pg.ready()]))).toBe('3Z');
    expect(h.core.requests.namespace.size).toBe(0);
  });

  it('judges a Bind by the still unconfirmed Parse before it in the same pipeline', () => {
    const h = ready();
    const r = h.client(P('s', 'SELECT 42'), B('s'), E(), S());
    expect(types(r.up)).toBe('PBES');
    expect(h.engine.inputs.at(-1)!.message.statement!.sql).toBe('SELECT 42');
  });

  it('drops the unnamed statement when an unnamed Parse fails', () => {
    const h = ready();
    ok(h, [P('', 'SELECT 1'), S()], [pg.parseComplete(), pg.ready()]);
    h.client(P('', 'SELEC'), S());
    h.server(pg.error('42601', 'syntax error'), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('')).toBeUndefined();
    // A Bind of it goes as sent: the server answers "unnamed prepared statement does not exist".
    expect(types(h.client(B(''), E(), S()).up)).toBe('BES');
  });

  it('keeps the unnamed statement when an unnamed Parse is skipped after an earlier error', () => {
    const h = ready();
    ok(h, [P('', 'SELECT 1'), S()], [pg.parseComplete(), pg.ready()]);
    h.client(P('x', 'SELEC'), P('', 'SELECT 2'), S());
    h.server(pg.error('42601', 'syntax error'), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('')).toMatchObject({ ref: { sql: 'SELECT 1' } });
  });

  it('drops the unnamed statement on a simple Query, even one that fails', () => {
    const h = ready();
    ok(h, [P('', 'SELECT 1'), S()], [pg.parseComplete(), pg.ready()]);
    h.client(Q('SELEC'));
    h.server(pg.error('42601', 'syntax error'), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('')).toBeUndefined();
  });

  it('keeps the first statement when a named Parse of an existing name fails 42P05', () => {
    const h = ready();
    ok(h, [P('s', 'SELECT 1'), S()], [pg.parseComplete(), pg.ready()]);
    h.client(P('s', 'SELECT 2'), S());
    h.server(pg.error('42P05', 'prepared statement "s" already exists'), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('s')).toMatchObject({ ref: { sql: 'SELECT 1' } });
  });

  it('predicts 42P05 for a later cycle: a pipelined re-Parse does not change what the name means', () => {
    const h = ready();
    ok(h, [P('s', 'SELECT 1'), S()], [pg.parseComplete(), pg.ready()]);
    h.client(P('s', 'SELECT 2'), S(), B('s'), E(), S());
    expect(h.engine.inputs.at(-1)!.message.statement!.sql).toBe('SELECT 1');
  });

  it('holds a Bind whose statement depends on an unanswered earlier cycle, and judges it once answered', () => {
    const h = ready();
    ok(h, [P('s', 'SELECT 1'), S()], [pg.parseComplete(), pg.ready()]);
    const judged = h.engine.inputs.length;
    // Until the Close is answered, s may be SELECT 1 (Close skipped) or SELECT 2.
    const r = h.client(CloseS('s'), S(), P('s', 'SELECT 2'), S(), B('s'), E(), S());
    expect(types(r.up)).toBe('CSPS');
    expect(r.actions).toContainEqual({ kind: 'pauseClient' });
    expect(h.engine.inputs.length).toBe(judged + 1); // the Parse, not yet the Bind
    const next = h.server(pg.closeComplete(), pg.ready());
    expect(types(next.down)).toBe('3Z');
    expect(types(next.up)).toBe('BES'); // the client's own Bind, judged against SELECT 2
    expect(next.actions).toContainEqual({ kind: 'resumeClient' });
    expect(h.engine.inputs.at(-1)!.message.statement!.sql).toBe('SELECT 2');
    const down = h.server(
      pg.parseComplete(),
      pg.ready(),
      pg.bindComplete(),
      pg.rowDescription(),
      pg.dataRow('2'),
      pg.complete('SELECT 1'),
      pg.ready(),
    ).down;
    expect(types(down)).toBe('1Z2TDCZ');
    expect(codes(h).every((c) => c === null)).toBe(true);
    expect(h.core.isIdle).toBe(true);
  });

  it('holds a simple Query that may EXECUTE a statement an unanswered earlier cycle changes', () => {
    const h = ready();
    h.engine.denyAll = false;
    ok(h, [Q('PREPARE p AS SELECT 1')], [pg.complete('PREPARE'), pg.ready()]);
    const judged = h.engine.inputs.length;
    // Until DEALLOCATE/PREPARE are answered, p may be SELECT 1 or SELECT 2.
    const r = h.client(Q('DEALLOCATE p; PREPARE p AS SELECT 2'), Q('execute p'));
    expect(types(r.up)).toBe('Q');
    expect(r.actions).toContainEqual({ kind: 'pauseClient' });
    expect(h.engine.inputs.length).toBe(judged + 1);
    const next = h.server(pg.complete('DEALLOCATE'), pg.complete('PREPARE'), pg.ready());
    expect(types(next.up)).toBe('Q');
    expect(next.actions).toContainEqual({ kind: 'resumeClient' });
    expect(h.engine.inputs.at(-1)!.statements[0]!.prepared!.inner!.sql).toBe('SELECT 2');
    // Text that cannot say EXECUTE is not held.
    h.server(pg.rowDescription(), pg.dataRow('2'), pg.complete('SELECT 1'), pg.ready());
    const plain = h.client(Q('DEALLOCATE p'), Q('SELECT 2'));
    expect(types(plain.up)).toBe('QQ');
  });

  it('judges a held Bind only when released, and a denial still goes in position', () => {
    const h = ready();
    ok(h, [P('s', 'SELECT 1'), S()], [pg.parseComplete(), pg.ready()]);
    h.client(CloseS('s'), S(), P('s', 'SELECT 2'), S(), B('s'), E(), S());
    // The policy that judges the Bind is the one in force when the name is certain.
    h.engine.denyAll = true;
    const next = h.server(pg.closeComplete(), pg.ready());
    expect(types(next.up)).toBe('PES'); // the Bind is replaced by a sentinel Parse
    const down = h.server(pg.parseComplete(), pg.ready(), syntaxErrorFor(next.up[0]!), pg.ready()).down;
    expect(types(down)).toBe('1ZEZ');
    expect(errorText(down[2])).toMatchObject({ C: '42501' });
    expect(h.core.isIdle).toBe(true);
  });

  it('lets a held Bind whose earlier Parse failed meet the server’s own error, as directly', () => {
    const h = ready();
    ok(h, [P('s', 'SELECT 1'), S()], [pg.parseComplete(), pg.ready()]);
    h.client(CloseS('s'), S(), P('s', 'SELEC 2'), S(), B('s'), E(), S());
    // Once the Close is answered, s is either absent or SELEC 2: the Bind goes as sent.
    const next = h.server(pg.closeComplete(), pg.ready());
    expect(types(next.up)).toBe('BES');
    const down = h.server(
      pg.error('42601', 'syntax error at or near "SELEC"'),
      pg.ready(),
      pg.error('26000', 'prepared statement "s" does not exist'),
      pg.ready(),
    ).down;
    expect(types(down)).toBe('EZEZ');
    expect(errorText(down[2])).toMatchObject({ C: '26000', M: 'prepared statement "s" does not exist' });
    expect(h.core.requests.namespace.confirmedEntry('s')).toBeUndefined();
    expect(h.core.isIdle).toBe(true);
  });

  it('gives a Bind of a name the server does not have exactly the server’s 26000 error, with no second denial', () => {
    const h = ready();
    const r = h.client(B('nope'), E(), B('nope2'), E(), S());
    expect(types(r.up)).toBe('BEBES');
    const sentinel = r.up[0]!;
    expect(sentinel.body.includes(Buffer.from('nope'))).toBe(false);
    // The server fails the first Bind and skips the rest.
    const down = h.server(missingStatementFor(sentinel), pg.ready()).down;
    expect(types(down)).toBe('EZ');
    expect(errorText(down[0])).toMatchObject({ C: '26000', M: 'prepared statement "nope" does not exist' });
    expect(h.core.isIdle).toBe(true);
  });

  it('passes a Bind of a missing unnamed statement as sent (only Parse makes one)', () => {
    const h = ready();
    const frames = [B(''), E(), S()];
    const r = h.client(...frames);
    expect(
      Buffer.concat(r.up.map((m) => Buffer.concat([Buffer.from(m.type), Buffer.alloc(4), m.body]))).length,
    ).toBe(Buffer.concat(frames).length);
    expect(r.up[0]!.body.equals(frames[0]!.subarray(5))).toBe(true);
  });

  it('binds a name made by SQL PREPARE once CommandComplete PREPARE confirms it', () => {
    const h = ready();
    h.client(Q('PREPARE q AS SELECT 7'));
    expect(h.core.requests.namespace.confirmedEntry('q')).toBeUndefined();
    h.server(pg.complete('PREPARE'), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('q')).toMatchObject({ ref: { sql: 'SELECT 7' } });
    h.client(B('q'), E(), S());
    expect(h.engine.inputs.at(-1)!.statements[0]!.command).toBe('SELECT');
  });

  it('records no PREPARE of a multi-statement Query whose earlier statement failed', () => {
    const h = ready();
    h.client(Q('SELECT 1/0; PREPARE q AS SELECT 1'));
    h.server(pg.rowDescription(), pg.error('22012', 'division by zero'), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('q')).toBeUndefined();
  });

  it('keeps a name whose DEALLOCATE never ran because an earlier statement failed', () => {
    const h = ready();
    ok(h, [Q('PREPARE q AS SELECT 1')], [pg.complete('PREPARE'), pg.ready()]);
    h.client(Q('SELECT 1/0; DEALLOCATE q'));
    h.server(pg.error('22012', 'division by zero'), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('q')).toBeDefined();
  });

  it('keeps every name when DISCARD ALL never ran', () => {
    const h = ready();
    ok(h, [Q('PREPARE q AS SELECT 1')], [pg.complete('PREPARE'), pg.ready()]);
    h.client(Q('SELECT 1/0; DISCARD ALL'));
    h.server(pg.error('22012', 'division by zero'), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('q')).toBeDefined();
  });

  it('keeps a PREPARE that ran before a later statement of the same Query failed (not transactional)', () => {
    const h = ready();
    h.client(Q('PREPARE q AS SELECT 1; SELECT 1/0'));
    h.server(pg.complete('PREPARE'), pg.error('22012', 'division by zero'), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('q')).toBeDefined();
  });

  it('applies DEALLOCATE ALL to named statements only (the unnamed one stays)', () => {
    const h = ready();
    ok(h, [P('', 'SELECT 1'), P('a', 'SELECT 2'), S()], [pg.parseComplete(), pg.parseComplete(), pg.ready()]);
    ok(h, [Q('DEALLOCATE ALL')], [pg.complete('DEALLOCATE ALL'), pg.ready()]);
    expect(h.core.requests.namespace.confirmedEntry('a')).toBeUndefined();
    // The Query dropped the unnamed statement, as any simple Query does.
    expect(h.core.requests.namespace.confirmedEntry('')).toBeUndefined();
  });

  it('applies DISCARD ALL and not DISCARD PLANS', () => {
    const h = ready();
    ok(h, [P('a', 'SELECT 2'), S()], [pg.parseComplete(), pg.ready()]);
    ok(h, [Q('DISCARD PLANS')], [pg.complete('DISCARD PLANS'), pg.ready()]);
    expect(h.core.requests.namespace.confirmedEntry('a')).toBeDefined();
    ok(h, [Q('DISCARD ALL')], [pg.complete('DISCARD ALL'), pg.ready()]);
    expect(h.core.requests.namespace.confirmedEntry('a')).toBeUndefined();
  });

  it('judges EXECUTE p by what p is, confirmed or prepared earlier in the same Query', () => {
    const h = ready();
    ok(h, [Q('PREPARE p AS DELETE FROM t')], []);
    expect(h.decisions.at(-1)!.decision.allow).toBe(false);
    const h2 = ready();
    h2.engine.denyAll = false;
    ok(h2, [Q('PREPARE p AS SELECT 1')], [pg.complete('PREPARE'), pg.ready()]);
    h2.client(Q('EXECUTE p'));
    expect(h2.engine.inputs.at(-1)!.statements[0]!.prepared!.inner!.command).toBe('SELECT');
    h2.client(Q('DEALLOCATE p; PREPARE p AS DELETE FROM t; EXECUTE p'));
    expect(h2.decisions.at(-1)!.decision.allow).toBe(false);
  });

  it('commits a PREPARE run through the extended protocol at its CommandComplete', () => {
    const h = ready();
    ok(
      h,
      [P('', 'PREPARE z AS SELECT 5'), B(''), E(), S()],
      [pg.parseComplete(), pg.bindComplete(), pg.complete('PREPARE'), pg.ready()],
    );
    expect(h.core.requests.namespace.confirmedEntry('z')).toMatchObject({ ref: { sql: 'SELECT 5' } });
  });

  it('does not record a Parse of several statements (the server refuses it, 42601)', () => {
    const h = ready();
    h.client(P('m', 'SELECT 1; SELECT 2'), S());
    h.server(pg.error('42601', 'cannot insert multiple commands into a prepared statement'), pg.ready());
    expect(h.core.requests.namespace.confirmedEntry('m')).toBeUndefined();
  });

  it('judges each Bind of a long unanswered pipeline by the Parse just before it', () => {
    const h = ready();
    const frames: Buffer[] = [];
    for (let i = 0; i < 5_000; i++) frames.push(P('', `SELECT ${i % 10}`), B(''), E(), S());
    const r = h.client(...frames);
    expect(r.up).toHaveLength(20_000);
    const binds = h.engine.inputs.filter((x) => x.message.type === 'Bind');
    expect(binds).toHaveLength(5_000);
    expect(binds.every((b, i) => b.message.statement!.sql === `SELECT ${i % 10}`)).toBe(true);
    expect(h.core.requests.namespace.pendingOps).toBe(10_000);
  });

  it('forgets a named portal on Close P and keeps statements', () => {
    const h = ready();
    ok(
      h,
      [P('s', 'SELECT 1'), B('s', 'cur'), encodeClose('P', 'cur'), S()],
      [pg.parseComplete(), pg.bindComplete(), pg.closeComplete(), pg.ready()],
    );
    expect(h.core.requests.namespace.confirmedEntry('s')).toBeDefined();
    expect(h.core.isIdle).toBe(true);
  });
});

// ==================================================================== errors at every position

describe('errors at every position of a pipeline', () => {
  const pipeline = (): Buffer[] => [
    P('a', 'SELECT 1'),
    B('a'),
    E(),
    P('b', 'SELECT 2'),
    B('b'),
    E(),
    CloseS('old'),
    S(),
  ];
  const answers = [
    pg.parseComplete(),
    pg.bindComplete(),
    pg.complete('SELECT 1'),
    pg.parseComplete(),
    pg.bindComplete(),
    pg.complete('SELECT 1'),
    pg.closeComplete(),
  ];

  for (let k = 0; k < 7; k++) {
    it(`an error answering message ${k + 1} rolls back what follows it`, () => {
      const h = ready();
      ok(h, [P('old', 'SELECT 0'), S()], [pg.parseComplete(), pg.ready()]);
      h.client(...pipeline());
      h.server(...answers.slice(0, k), pg.error('XX000', 'boom'), pg.ready());
      const ns = h.core.requests.namespace;
      expect(ns.confirmedEntry('a') !== undefined).toBe(k > 0);
      expect(ns.confirmedEntry('b') !== undefined).toBe(k > 3);
      expect(ns.confirmedEntry('old') !== undefined).toBe(true);
      expect(ns.pendingOps).toBe(0);
      expect(h.core.isIdle).toBe(true);
    });
  }
});

// ==================================================================== denials in position

describe('denials in position', () => {
  for (const pos of [0, 1, 2]) {
    it(`a denied Parse at position ${pos + 1} becomes a sentinel; the client sees one error and one ReadyForQuery`, () => {
      const h = ready();
      const frames = [P('a', 'SELECT 1'), P('b', 'SELECT 2'), P('c', 'SELECT 3')];
      frames[pos] = P('x', 'DELETE FROM t');
      const r = h.client(...frames, S());
      expect(types(r.up)).toBe('PPPS');
      const sentinel = r.up[pos]!;
      expect(sentinel.body.toString()).toContain('pgward_denied_');
      const answers = [...Array(pos).fill(pg.parseComplete()), syntaxErrorFor(sentinel), pg.ready()];
      const down = h.server(...answers).down;
      expect(types(down)).toBe(`${'1'.repeat(pos)}EZ`);
      expect(errorText(down[pos])).toMatchObject({
        C: '42501',
        M: 'permission denied by policy: DELETE is denied',
      });
      expect(h.core.requests.enforcer.size).toBe(0);
    });
  }

  it('a denied Bind becomes a Parse of a name nobody uses', () => {
    const h = ready();
    h.engine.denyAll = false;
    ok(h, [P('s', 'SELECT 1'), S()], [pg.parseComplete(), pg.ready()]);
    h.engine.denyAll = true;
    const r = h.client(B('s'), E(), S());
    expect(types(r.up)).toBe('PES');
    const down = h.server(syntaxErrorFor(r.up[0]!), pg.ready()).down;
    expect(types(down)).toBe('EZ');
    expect(errorText(down[0]).M).toBe('permission denied by policy: everything is denied');
  });

  it('a denied FunctionCall becomes a sentinel Query', () => {
    const h = ready();
    const r = h.client(encodeFunctionCall(666, []));
    expect(types(r.up)).toBe('Q');
    const down = h.server(syntaxErrorFor(r.up[0]!), pg.ready()).down;
    expect(types(down)).toBe('EZ');
    expect(errorText(down[0]).M).toBe('permission denied by policy: function 666');
  });

  it('a denied Query becomes a sentinel Query; an allowed FunctionCall goes as sent', () => {
    const h = ready();
    const r = h.client(Q('DELETE FROM t'));
    expect(r.up[0]!.body.toString()).toContain('pgward_denied_');
    const down = h.server(syntaxErrorFor(r.up[0]!), pg.ready()).down;
    expect(errorText(down[0])).toMatchObject({ S: 'ERROR', C: '42501' });
    expect(types(h.client(encodeFunctionCall(1, [])).up)).toBe('F');
  });

  it('a denial inside BEGIN leaves the transaction failed (status E), as the server reports', () => {
    const h = ready();
    ok(h, [Q('BEGIN')], [pg.complete('BEGIN'), pg.ready('T')]);
    const r = h.client(Q('DELETE FROM t'));
    h.server(syntaxErrorFor(r.up[0]!), pg.ready('E'));
    expect(h.core.conn.transaction_status).toBe('E');
  });

  it('a sentinel the server skips (an earlier error) answers nothing and is settled at Sync', () => {
    const h = ready();
    const r = h.client(P('bad', 'SELEC'), P('x', 'DELETE FROM t'), S());
    expect(h.core.requests.enforcer.size).toBe(1);
    const down = h.server(pg.error('42601', 'syntax error at or near "SELEC"'), pg.ready()).down;
    expect(types(down)).toBe('EZ');
    expect(errorText(down[0]).C).toBe('42601');
    expect(h.core.requests.enforcer.size).toBe(0);
    expect(r.up).toHaveLength(3);
  });

  it('a Bind of a Parse denied in the same pipeline is not denied twice (the server skips it)', () => {
    const h = ready();
    const r = h.client(P('x', 'DELETE FROM t'), B('x'), E(), S());
    expect(types(r.up)).toBe('PBES');
    const down = h.server(syntaxErrorFor(r.up[0]!), pg.ready()).down;
    expect(types(down)).toBe('EZ');
    expect(h.core.requests.enforcer.size).toBe(0);
  });

  it('a sentinel of a later cycle stays pending while an earlier cycle ends', () => {
    const h = ready();
    const r = h.client(P('a', 'SELECT 1'), S(), Q('DELETE FROM t'));
    h.server(pg.parseComplete(), pg.ready());
    expect(h.core.requests.enforcer.size).toBe(1);
    const down = h.server(syntaxErrorFor(r.up[2]!), pg.ready()).down;
    expect(errorText(down[0]).C).toBe('42501');
  });

  it('a Query skipped after an extended-protocol error (no Sync yet) gives no ReadyForQuery', () => {
    const h = ready();
    h.client(P('bad', 'SELEC'), Q('SELECT 1'), S());
    h.server(pg.error('42601', 'syntax error'), pg.ready());
    expect(h.core.requests.outstanding).toBe(0);
    expect(h.core.isIdle).toBe(true);
  });
});

// ==================================================================== COPY

describe('COPY', () => {
  it('COPY FROM STDIN by Query: data flows, other messages are refused', () => {
    const h = ready();
    h.client(Q('COPY t FROM STDIN'));
    h.server(pg.copyIn());
    expect(types(h.client(encodeCopyData(Buffer.from('1\n')), encodeCopyData(Buffer.from('2\n'))).up)).toBe(
      'dd',
    );
    const r = h.client(P('s', 'SELECT 1'));
    expect(r.up).toEqual([]);
    expect(errorText(r.down[0])).toMatchObject({ S: 'FATAL', C: '08P01' });
  });

  it('COPY FROM STDIN by Query ends with CopyDone, CommandComplete, ReadyForQuery', () => {
    const h = ready();
    h.client(Q('COPY t FROM STDIN'));
    h.server(pg.copyIn());
    h.client(encodeCopyData(Buffer.from('1\n')), encodeCopyDone());
    h.server(pg.complete('COPY 1'), pg.ready());
    expect(h.core.isIdle).toBe(true);
  });

  it('COPY FROM STDIN in a pipeline: the Sync sent with Execute is ignored by the server', () => {
    const h = ready();
    h.client(P('', 'COPY t FROM STDIN'), B(''), E(), S());
    h.server(pg.parseComplete(), pg.bindComplete(), pg.copyIn());
    expect(h.core.requests.outstanding).toBe(1); // the Execute; the Sync will not be answered
    h.client(encodeCopyData(Buffer.from('1\n')), encodeCopyDone(), S());
    h.server(pg.complete('COPY 1'), pg.ready());
    expect(h.core.isIdle).toBe(true);
  });

  it('CopyFail: the server fails the COPY, the next Sync ends the cycle', () => {
    const h = ready();
    h.client(P('', 'COPY t FROM STDIN'), B(''), E(), S());
    h.server(pg.parseComplete(), pg.bindComplete(), pg.copyIn());
    h.client(encodeCopyFail('no'), S());
    h.server(pg.error('57014', 'COPY from stdin failed: no'), pg.ready());
    expect(h.core.isIdle).toBe(true);
    expect(types(h.client(Q('SELECT 1')).up)).toBe('Q');
  });

  it('COPY TO STDOUT: CopyOutResponse, CopyData and CopyDone pass through', () => {
    const h = ready();
    h.client(Q('COPY t TO STDOUT'));
    const down = h.server(
      pg.copyOut(),
      pg.copyData('1\n'),
      pg.copyDone(),
      pg.complete('COPY 1'),
      pg.ready(),
    ).down;
    expect(types(down)).toBe('HdcCZ');
    expect(h.core.isIdle).toBe(true);
  });

  it('CopyData after a failed COPY is forwarded (the server ignores it)', () => {
    const h = ready();
    h.client(Q('COPY t FROM STDIN'));
    h.server(pg.copyIn(), pg.error('22P02', 'invalid input'), pg.ready());
    expect(types(h.client(encodeCopyData(Buffer.from('x')), encodeCopyDone()).up)).toBe('dc');
  });
});

// ==================================================================== ending

describe('ending', () => {
  it('drain closes an idle session with 57P01 at once', () => {
    const h = ready();
    h.core.shutdown();
    const r = h.split(h.take());
    expect(errorText(r.down[0])).toMatchObject({ S: 'FATAL', C: '57P01' });
    expect(h.closed).toEqual(['shutdown']);
  });

  it('drain lets a busy session finish its request first', () => {
    const h = ready();
    h.client(Q('SELECT pg_sleep(1)'));
    h.core.shutdown();
    expect(h.take()).toEqual([]);
    const r = h.server(pg.rowDescription(), pg.dataRow(''), pg.complete('SELECT 1'), pg.ready());
    expect(types(r.down)).toBe('TDCZE');
    expect(h.closed).toEqual(['shutdown']);
  });

  it('Terminate ends the session and terminates the backend without a cancel', () => {
    const h = ready();
    const r = h.client(Q('SELECT 1'), encodeTerminate());
    expect(types(r.up)).toBe('Q');
    expect(r.actions.find((a) => a.kind === 'closeUpstream')).toEqual({
      kind: 'closeUpstream',
      terminate: true,
      cancelFirst: false,
    });
  });

  it('a client that vanishes mid-query gets its query cancelled', () => {
    const h = ready();
    h.client(Q('SELECT pg_sleep(10)'));
    h.core.clientClosed('client_closed');
    expect(h.take().find((a) => a.kind === 'closeUpstream')).toEqual({
      kind: 'closeUpstream',
      terminate: true,
      cancelFirst: true,
    });
  });

  it('a lost upstream is a FATAL 08006 for the client', () => {
    const h = ready();
    h.core.upstreamClosed();
    const r = h.split(h.take());
    expect(errorText(r.down[0])).toMatchObject({ S: 'FATAL', C: '08006' });
    expect(h.closed).toEqual(['upstream_lost']);
  });

  it('a FATAL from the server is passed on and the close is the server’s', () => {
    const h = ready();
    expect(
      types(h.server(pg.error('57P01', 'terminating connection due to administrator command', 'FATAL')).down),
    ).toBe('E');
    h.core.upstreamClosed();
    h.take();
    expect(h.closed).toEqual(['upstream_fatal']);
  });
});

// ==================================================================== lexical truth and tripwires

/** A Query of exact bytes (encodeQuery would write the text as UTF-8). */
function rawQ(sql: Buffer): Buffer {
  return new MessageWriter().bytes(sql).int8(0).message('Q');
}
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const codes = (h: Harness): Array<string | null> =>
  h.decisions.filter((d) => d.input.message.type !== 'StartupMessage').map((d) => d.decision.error_code);
const CHANGING = 'PGWARD_ERR_SQL_LEXICAL_CHANGING';

describe('lexical state', () => {
  it.each([
    ['client_encoding', 'UHC'],
    ['client_encoding', 'JOHAB'],
    ['standard_conforming_strings', 'maybe'],
    ['options', '--client_encoding=UHC'],
  ])('refuses a startup with %s=%s at once, before contacting the server', (name, value) => {
    const h = new Harness();
    const r = h.client(
      encodeStartupMessage(
        PROTOCOL_3_0,
        new Map([
          ['user', 'app'],
          [name, value],
        ]),
      ),
    );
    expect(errorText(r.down[0])).toMatchObject({ S: 'FATAL', C: value === 'maybe' ? '22023' : '0A000' });
    expect(errorText(r.down[0]).M).toMatch(/^pgward: /);
    expect(r.actions.some((a) => a.kind === 'connectUpstream')).toBe(false);
    expect(h.errors).toEqual(['PGWARD_ERR_SQL_LEXICAL_STARTUP']);
    expect(h.closed).toEqual(['startup_denied']);
  });

  it('reads SQL text in the client encoding the server reported', () => {
    const h = new Harness();
    h.login('app', 1, Buffer.from([1, 2, 3, 4]), [['client_encoding', 'LATIN1']]);
    const r = h.client(rawQ(latin1("SELECT 'caf\u00e9'")));
    expect(types(r.up)).toBe('Q');
    expect(h.engine.inputs.at(-1)!.message.sql).toBe("SELECT 'caf\u00e9'");
  });

  it('refuses non-ASCII text pipelined behind a SET client_encoding until the server answers it', () => {
    const h = ready();
    const r = h.client(
      Q("SET client_encoding = 'LATIN1'"),
      rawQ(latin1("SELECT 'caf\u00e9'")),
      Q('SELECT 1'),
      rawQ(latin1("SELECT 'caf\u00e9s'")),
    );
    expect(codes(h)).toEqual([null, CHANGING, null, CHANGING]);
    expect(h.core.requests.lexicalInFlight).toBe(true);
    const down = h.server(
      pg.complete('SET'),
      pg.param('client_encoding', 'LATIN1'),
      pg.ready(),
      syntaxErrorFor(r.up[1]!),
      pg.ready(),
      pg.rowDescription(),
      pg.dataRow('1'),
      pg.complete('SELECT 1'),
      pg.ready(),
      syntaxErrorFor(r.up[3]!),
      pg.ready(),
    ).down;
    expect(down.filter((m) => m.type === 'E').map((m) => fields(m).C)).toEqual(['0A000', '0A000']);
    expect(h.core.requests.lexicalInFlight).toBe(false);
    // Confirmed: now read as LATIN1.
    const again = h.client(rawQ(latin1("SELECT 'caf\u00e9'")));
    expect(types(again.up)).toBe('Q');
    expect(h.engine.inputs.at(-1)!.message.sql).toBe("SELECT 'caf\u00e9'");
    expect(h.diverged).toEqual([]);
  });

  // Out of sight: a function (or trigger, view, default) that sets standard_conforming_strings.
  const SMUGGLE = "SELECT '\\' || ' ; DROP TABLE t; SELECT ' -- '";

  it('holds SQL text with a backslash behind an unanswered cycle; a change the server then reports ends the session first', () => {
    const h = ready();
    const r = h.client(Q('SELECT f()'), Q(SMUGGLE));
    expect(types(r.up)).toBe('Q');
    expect(r.actions).toContainEqual({ kind: 'pauseClient' });
    const after = h.server(
      pg.complete('SELECT 1'),
      pg.param('standard_conforming_strings', 'off'),
      pg.ready(),
    );
    expect(types(after.up)).toBe('');
    expect(errorText(after.down[0])).toMatchObject({ S: 'FATAL', C: '42501' });
    expect(h.engine.inputs.some((i) => i.message.sql === SMUGGLE)).toBe(false);
  });

  it('lets held backslash text go once the cycle before is answered, read under the confirmed state', () => {
    const h = ready();
    h.client(Q('SELECT f()'), Q("SELECT 'a\\b'"));
    const next = h.server(pg.complete('SELECT 1'), pg.ready());
    expect(types(next.up)).toBe('Q');
    expect(next.actions).toContainEqual({ kind: 'resumeClient' });
    expect(h.engine.inputs.at(-1)!.message.sql).toBe("SELECT 'a\\b'");
    expect(codes(h)).toEqual([null, null]);
  });

  it('refuses backslash text behind an unanswered Execute of the same cycle (the server answers only at Sync)', () => {
    const h = ready();
    h.client(P('', 'SELECT f()'), B(''), E());
    h.client(encodeParse('s2', "SELECT 'a\\b'"));
    expect(codes(h)).toEqual([null, null, CHANGING]);
    // Without a Bind or Execute before it, nothing ran: the same text is read at once.
    const h2 = ready();
    h2.client(P('', 'SELECT 1'), encodeParse('s2', "SELECT 'a\\b'"));
    expect(codes(h2)).toEqual([null, null]);
  });

  it('refuses non-ASCII text behind a SET in the same extended pipeline, even before its Sync', () => {
    const h = ready();
    h.client(P('', "SET client_encoding = 'LATIN1'"), B(''), E());
    h.client(encodeParse('', "SELECT 'caf\u00e9'"));
    expect(codes(h)).toEqual([null, null, CHANGING]);
  });

  it('counts a change in flight from the Bind and Execute of a statement prepared earlier', () => {
    const h = ready();
    ok(h, [P('enc', "SET client_encoding = 'LATIN1'"), S()], [pg.parseComplete(), pg.ready()]);
    expect(h.core.requests.lexicalInFlight).toBe(false);
    h.client(B('enc', 'p'), rawQ(latin1("SELECT 'caf\u00e9'")));
    expect(codes(h).at(-1)).toBe(CHANGING);
    // A portal bound in an open transaction and run in a later cycle.
    const h2 = ready();
    ok(h2, [Q('BEGIN')], [pg.complete('BEGIN'), pg.ready('T')]);
    ok(
      h2,
      [P('enc', "SET client_encoding = 'LATIN1'"), B('enc', 'p'), S()],
      [pg.parseComplete(), pg.bindComplete(), pg.ready('T')],
    );
    expect(h2.core.requests.lexicalInFlight).toBe(false);
    h2.client(E('p'), S(), rawQ(latin1("SELECT 'caf\u00e9'")));
    expect(codes(h2).at(-1)).toBe(CHANGING);
  });

  it('counts a change in flight from EXECUTE of a PREPAREd SET', () => {
    const h = ready();
    ok(h, [Q("PREPARE enc AS SET client_encoding = 'LATIN1'")], [pg.complete('PREPARE'), pg.ready()]);
    h.client(Q('EXECUTE enc'), rawQ(latin1("SELECT 'caf\u00e9'")));
    expect(codes(h).at(-1)).toBe(CHANGING);
  });

  it('counts a change in flight from set_config, RESET ALL and DISCARD ALL', () => {
    for (const sql of [
      "SELECT set_config('client_encoding', 'LATIN1', false)",
      'RESET ALL',
      'DISCARD ALL',
      'RESET standard_conforming_strings',
    ]) {
      const h = ready();
      h.client(Q(sql), rawQ(latin1("SELECT 'caf\u00e9'")));
      expect(codes(h)).toEqual([null, CHANGING]);
    }
  });

  it('counts the end of a transaction that changed the encoding as a change in flight (it may undo it)', () => {
    const h = ready();
    ok(h, [Q('BEGIN')], [pg.complete('BEGIN'), pg.ready('T')]);
    ok(
      h,
      [Q("SET client_encoding = 'LATIN1'")],
      [pg.complete('SET'), pg.param('client_encoding', 'LATIN1'), pg.ready('T')],
    );
    const r = h.client(Q('ROLLBACK'), rawQ(latin1("SELECT 'caf\u00e9'")));
    expect(codes(h).slice(-2)).toEqual([null, CHANGING]);
    h.server(
      pg.complete('ROLLBACK'),
      pg.param('client_encoding', 'UTF8'),
      pg.ready(),
      syntaxErrorFor(r.up[1]!),
      pg.ready(),
    );
    expect(h.diverged).toEqual([]);
    expect(h.core.requests.lexical.clientEncoding).toBe('UTF8');
    // Idle again: a later COMMIT is an ordinary statement.
    h.client(Q('COMMIT'), rawQ(Buffer.from("SELECT 'caf\u00e9'")));
    expect(codes(h).slice(-2)).toEqual([null, null]);
  });

  it('ends the session when the encoding changes with no statement pgward judged as changing it', () => {
    const h = ready();
    h.client(Q('SELECT f()'));
    const r = h.server(
      pg.rowDescription(),
      pg.dataRow('x'),
      pg.complete('SELECT 1'),
      pg.param('client_encoding', 'SJIS'),
      pg.ready(),
    );
    expect(types(r.down)).toBe('E');
    expect(errorText(r.down[0])).toMatchObject({ S: 'FATAL', C: '42501' });
    expect(h.errors).toEqual(['PGWARD_ERR_SERVER_STATE_LEXICAL']);
    expect(h.diverged[0]!.preceding!.input.message.sql).toBe('SELECT f()');
    expect(h.closed).toEqual(['server_state_diverged']);
    expect(r.actions).toContainEqual({ kind: 'closeUpstream', terminate: true, cancelFirst: true });
  });
});

describe('tripwires', () => {
  const reports: Array<[string, string]> = [
    ['client_encoding', 'UTF8'],
    ['standard_conforming_strings', 'on'],
    ['session_authorization', 'app'],
    ['is_superuser', 'off'],
    ['default_transaction_read_only', 'off'],
  ];

  function diverges(h: Harness, name: string, value: string, code: string): void {
    h.client(Q('SELECT f()'));
    const r = h.server(pg.complete('SELECT 1'), pg.param(name, value), pg.ready());
    expect(types(r.down)).toBe('E');
    expect(errorText(r.down[0])).toMatchObject({ S: 'FATAL', C: '42501' });
    expect(errorText(r.down[0]).M).toMatch(/^pgward: server state diverged: /);
    expect(h.errors).toEqual([code]);
    expect(h.diverged).toMatchObject([{ code, preceding: { input: { message: { sql: 'SELECT f()' } } } }]);
    expect(h.closed).toEqual(['server_state_diverged']);
  }

  it('session_authorization other than the judged user', () => {
    const h = new Harness();
    h.login('app', 1, Buffer.from([1, 2, 3, 4]), reports);
    diverges(h, 'session_authorization', 'postgres', 'PGWARD_ERR_SERVER_STATE_IDENTITY');
  });

  it('is_superuser changing from what the server first reported', () => {
    const h = new Harness();
    h.login('app', 1, Buffer.from([1, 2, 3, 4]), reports);
    diverges(h, 'is_superuser', 'on', 'PGWARD_ERR_SERVER_STATE_IDENTITY');
  });

  it('default_transaction_read_only off for a user the startup decision made read-only', () => {
    const h = new Harness();
    h.engine.sessionParameters = { default_transaction_read_only: 'on' };
    h.login('app', 1, Buffer.from([1, 2, 3, 4]), [
      ...reports.slice(0, 4),
      ['default_transaction_read_only', 'on'],
    ]);
    diverges(h, 'default_transaction_read_only', 'off', 'PGWARD_ERR_SERVER_STATE_READ_ONLY');
  });

  it('holds a read-only session’s next cycle until the server answered the one before (the tripwire fires first)', () => {
    const h = new Harness();
    h.engine.sessionParameters = { default_transaction_read_only: 'on' };
    h.login('app', 1, Buffer.from([1, 2, 3, 4]), [
      ...reports.slice(0, 4),
      ['default_transaction_read_only', 'on'],
    ]);
    const r = h.client(Q('SELECT v()'), Q('SELECT w()'));
    expect(types(r.up)).toBe('Q');
    expect(r.actions).toContainEqual({ kind: 'pauseClient' });
    const after = h.server(
      pg.complete('SELECT 1'),
      pg.param('default_transaction_read_only', 'off'),
      pg.ready(),
    );
    expect(types(after.up)).toBe('');
    expect(errorText(after.down[0])).toMatchObject({ S: 'FATAL', C: '42501' });
    expect(h.engine.inputs.some((i) => i.message.sql === 'SELECT w()')).toBe(false);
    expect(h.errors).toEqual(['PGWARD_ERR_SERVER_STATE_READ_ONLY']);
  });

  it('lets a read-only session’s held cycle go once the one before is answered, in order', () => {
    const h = new Harness();
    h.engine.sessionParameters = { default_transaction_read_only: 'on' };
    h.login('app', 1, Buffer.from([1, 2, 3, 4]), [
      ...reports.slice(0, 4),
      ['default_transaction_read_only', 'on'],
    ]);
    const r = h.client(P('', 'SELECT 1'), B(''), E(), S(), P('', 'SELECT 2'), B(''), E(), S());
    expect(types(r.up)).toBe('PBESP');
    const more = h.client(Q('SELECT 3'));
    expect(types(more.up)).toBe('');
    const next = h.server(pg.parseComplete(), pg.bindComplete(), pg.complete('SELECT 1'), pg.ready());
    expect(types(next.up)).toBe('BES');
    expect(next.actions).toContainEqual({ kind: 'resumeClient' });
    const last = h.server(pg.parseComplete(), pg.bindComplete(), pg.complete('SELECT 1'), pg.ready());
    expect(types(last.up)).toBe('Q');
    expect(h.core.isIdle).toBe(false);
  });

  it('does not hold COPY data of a read-only session behind its COPY (the server waits for it)', () => {
    const h = new Harness();
    h.engine.sessionParameters = { default_transaction_read_only: 'on' };
    h.login('app', 1, Buffer.from([1, 2, 3, 4]), [
      ...reports.slice(0, 4),
      ['default_transaction_read_only', 'on'],
    ]);
    h.client(Q('COPY t FROM STDIN'));
    h.server(pg.copyIn());
    const r = h.client(encodeCopyData(Buffer.from('1\n')), encodeCopyDone());
    expect(types(r.up)).toBe('dc');
    expect(types(h.server(pg.complete('COPY 1'), pg.ready()).down)).toBe('CZ');
  });

  it('default_transaction_read_only changing for a user that was not made read-only is no divergence', () => {
    const h = new Harness();
    h.login('app', 1, Buffer.from([1, 2, 3, 4]), reports);
    ok(
      h,
      [Q('SELECT f()')],
      [pg.complete('SELECT 1'), pg.param('default_transaction_read_only', 'on'), pg.ready()],
    );
    expect(h.diverged).toEqual([]);
    expect(h.core.conn.server).toMatchObject({
      default_transaction_read_only: true,
      session_authorization: 'app',
    });
  });

  it('standard_conforming_strings off with no statement pgward judged as changing it', () => {
    const h = new Harness();
    h.login('app', 1, Buffer.from([1, 2, 3, 4]), reports);
    diverges(h, 'standard_conforming_strings', 'off', 'PGWARD_ERR_SERVER_STATE_LEXICAL');
  });

  it('a client encoding pgward cannot read, reported at startup (a role or database default)', () => {
    const h = new Harness();
    const down = h.login('app', 1, Buffer.from([1, 2, 3, 4]), [['client_encoding', 'UHC']]);
    expect(types(down)).toBe('E');
    expect(errorText(down[0])).toMatchObject({ S: 'FATAL', C: '42501' });
    expect(h.errors).toEqual(['PGWARD_ERR_SERVER_STATE_LEXICAL']);
    expect(h.diverged[0]!.preceding!.input.message.type).toBe('StartupMessage');
    expect(h.core.phase).toBe('closed');
  });
});

// ==================================================================== helpers sanity

test('messages() splits what the harness encodes', () => {
  expect(types(messages(Buffer.concat([pg.parseComplete(), pg.ready()])))).toBe('1Z');
  expect(new MessageWriter().message('1')).toHaveLength(5);
});

function encodeFlush(): Buffer {
  return new MessageWriter().message('H');
}

// ==================================================================== decode once

describe('decode once', () => {
  /** The name every decoder passes to BodyReader.done (one call per message decoded). */

  it('reads each client frame once on the judged path, and its SQL text once', () => {
    const h = ready();
    const sqlReads = jest.spyOn(lexical, 'readSqlText');
    try {
      const judgedBefore = h.engine.inputs.length;
      const names = decodes(() => h.client(P('s', 'SELECT 1'), B('s'), E(), S(), Q('SELECT 2')));
      expect(names).toEqual(['Parse', 'Bind', 'Execute', 'Sync', 'Query']);
      expect(sqlReads).toHaveBeenCalledTimes(2); // the Parse's text and the Query's
      expect(h.engine.inputs.length).toBe(judgedBefore + 3);
      // Audit and capture get the message decoded here, never the bytes alone.
      const bind = h.decisions.at(-2)!;
      expect(bind.message?.name).toBe('Bind');
      expect(bind.message?.bytes).toBe(bind.frame);
    } finally {
      sqlReads.mockRestore();
    }
  });

  it('refuses a CopyDone with a body (FATAL 08P01) though the reader, like PostgreSQL, ignores it', () => {
    const h = ready();
    const r = h.client(new MessageWriter().int8(0x78).message('c'), Q('SELECT 1'));
    expect(types(r.up)).toBe('');
    expect(errorText(r.down[0])).toMatchObject({ S: 'FATAL', C: '08P01' });
    expect(errorText(r.down[0]).M).toMatch(/trailing bytes/);
  });

  it('reads only the backend answers whose content matters, each once; rows are never decoded', () => {
    const h = ready();
    h.client(P('', 'SELECT 1'), B(''), E(), S());
    const names = decodes(() =>
      h.server(
        pg.parseComplete(),
        pg.bindComplete(),
        pg.rowDescription(),
        pg.dataRow('1'),
        pg.dataRow('2'),
        pg.complete('SELECT 2'),
        pg.ready(),
      ),
    );
    // ReadyForQuery is read by length and status byte, and a CommandComplete whose tag nothing
    // reads is checked in place: neither is decoded.
    expect(names).toEqual([]);
    expect(h.core.isIdle).toBe(true);
    // A tag that confirms a statement (PREPARE) is decoded, once.
    h.client(Q('PREPARE p AS SELECT 1'));
    expect(decodes(() => h.server(pg.complete('PREPARE'), pg.ready()))).toEqual(['CommandComplete']);
    expect(h.core.requests.resolve('p')).not.toBe('absent');
  });
});
