/**
 * Protocol-level threats on a raw socket to pgward: bytes smuggled after SSLRequest, bad startup
 * packets, bad lengths, unknown or out-of-phase messages. Each must end in FATAL 08P01 and a close,
 * and the upstream must never see the bad bytes: the violating frames carry an INSERT with a
 * marker value, and the upstream runs with log_statement=all and the application name in every
 * log line, so both the table and the server log show whether anything got through.
 * https://www.postgresql.org/docs/current/protocol-flow.html
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import fc from 'fast-check';
import type { Client } from 'pg';
import { testCertFiles, ensureTestCerts } from '../helpers/certs';
import { CLUSTER_DB, type Cluster, startCluster, stopAllClusters } from '../helpers/cluster';
import { type RunningGateway, startGateway, stopAllGateways } from '../helpers/gateway';
import { pgClient } from '../helpers/pg-clients';
import {
  type BackendMessage,
  PROTOCOL_3_0,
  WireClient,
  encodeCancelRequest,
  encodeCopyData,
  encodeCopyDone,
  encodeGSSENCRequest,
  encodeQuery,
  encodeSSLRequest,
  encodeStartup,
  errorsOf,
  exchange,
  readErrorFields,
  splitBackendMessages,
  typed,
  typedHeader,
  untypedPacket,
} from './wire';

const MAX_MESSAGE_BYTES = 1024 * 1024;

jest.setTimeout(60_000);

let cluster: Cluster;
let gw: RunningGateway;
let admin: Client;

beforeAll(async () => {
  const certs = testCertFiles(await ensureTestCerts());
  cluster = await startCluster();
  admin = await pgClient({
    host: cluster.host,
    port: cluster.port,
    user: 'postgres',
    database: CLUSTER_DB,
    applicationName: 'pgward-framing-admin',
  });
  await admin.query(`ALTER SYSTEM SET log_statement = 'all'`);
  await admin.query(`ALTER SYSTEM SET log_line_prefix = '%m [%p] app=%a '`);
  await admin.query('SELECT pg_reload_conf()');
  await admin.query('CREATE TABLE framing_t (v int)');
  await admin.query('GRANT ALL ON framing_t TO PUBLIC');
  gw = await startGateway({
    upstream: `${cluster.host}:${cluster.port}`,
    config: {
      tls: { cert_file: certs.gatewayCert, key_file: certs.gatewayKey },
      limits: { max_message_bytes: MAX_MESSAGE_BYTES },
    },
  });
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await stopAllGateways();
  await stopAllClusters();
});

let appSeq = 0;
/** A fresh application name, so the server log lines of one case can be told apart. */
const newApp = (what: string): string => `pgward-framing-${what}-${++appSeq}`;

/** Server log lines (statements, errors) of sessions with this application name. */
function serverLogFor(app: string): string[] {
  return readFileSync(cluster.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`app=${app} `));
}

async function markerRows(marker: number): Promise<number> {
  const r = await admin.query<{ n: string }>('SELECT count(*) AS n FROM framing_t WHERE v = $1', [marker]);
  return Number(r.rows[0]?.n);
}

const insertSql = (marker: number): string => `INSERT INTO framing_t VALUES (${marker})`;
const insertBody = (marker: number): Buffer => Buffer.from(`${insertSql(marker)}\0`, 'utf8');

function expectFatal08P01(messages: BackendMessage[], message?: RegExp): void {
  expect(messages.map((m) => m.type)).toEqual(['E']);
  const f = readErrorFields((messages[0] as BackendMessage).body);
  expect(f).toMatchObject({ severity: 'FATAL', code: '08P01' });
  if (message) expect(f.message).toMatch(message);
}

/** A session logged in through pgward as trust_user with application name `app`. */
async function loggedIn(app: string): Promise<WireClient> {
  const c = await WireClient.connect(gw.host, gw.port);
  await c.startup({ user: 'trust_user', database: CLUSTER_DB, application_name: app });
  return c;
}

/** Lets the upstream finish anything it might (wrongly) have been sent before the checks. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

describe('SSLRequest / GSSENCRequest followed by bytes in the same packet (CVE-2021-23214 class)', () => {
  test('a lone SSLRequest is answered S (the control case)', async () => {
    const c = await WireClient.connect(gw.host, gw.port);
    try {
      c.write(encodeSSLRequest());
      expect((await c.readBytes(1)).toString('latin1')).toBe('S');
    } finally {
      c.destroy();
    }
  });

  test.each([
    ['SSLRequest', encodeSSLRequest, 901],
    ['GSSENCRequest', encodeGSSENCRequest, 902],
  ])(
    '%s + StartupMessage + Query in one write: FATAL 08P01, no S/N, nothing forwarded',
    async (_name, request, marker) => {
      const app = newApp('sslsmuggle');
      const smuggled = Buffer.concat([
        request(),
        encodeStartup({ user: 'trust_user', database: CLUSTER_DB, application_name: app }),
        encodeQuery(insertSql(marker)),
      ]);
      const r = await exchange(gw.host, gw.port, smuggled);
      expect(r.closed).toBe(true);
      // The first byte is an ErrorResponse, not the one-byte S/N answer of a processed request.
      expect(r.data[0]).toBe('E'.charCodeAt(0));
      expectFatal08P01(r.messages, /unencrypted data after (SSL|GSSENC) request/);
      await settle();
      const act = await admin.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [app]);
      expect(act.rowCount).toBe(0);
      expect(serverLogFor(app)).toEqual([]);
      expect(await markerRows(marker)).toBe(0);
    },
  );
});

describe('bad startup packets: FATAL 08P01 (silence for an invalid length) and close', () => {
  const startupWithVersion = (version: number): Buffer =>
    encodeStartup({ user: 'trust_user', database: CLUSTER_DB }, version);
  const noTerminator = (): Buffer => {
    const ok = startupWithVersion(PROTOCOL_3_0);
    return untypedPacket(ok.subarray(4, ok.length - 1));
  };
  const cases: Array<[string, Buffer, RegExp]> = [
    ['length 4 (< 8)', Buffer.from([0, 0, 0, 4]), /invalid length of startup packet/],
    ['length 7 (< 8)', Buffer.from([0, 0, 0, 7, 0, 3, 0]), /invalid length of startup packet/],
    [
      // PostgreSQL caps the body after the length word at 10,000: a 10,004-byte packet is valid.
      'length 10005 (body > 10000)',
      Buffer.from([0, 0, 0x27, 0x15, 0, 3, 0, 0]),
      /invalid length of startup packet/,
    ],
    ['length 2^31-1', Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]), /invalid length of startup packet/],
    [
      'length 2^31 (negative as int32)',
      Buffer.from([0x80, 0, 0, 0, 0, 3, 0, 0]),
      /invalid length of startup packet/,
    ],
    ['protocol 4.0', startupWithVersion(0x00040000), /unsupported frontend protocol 4\.0/],
    ['protocol 2.0', startupWithVersion(0x00020000), /unsupported frontend protocol 2\.0/],
    ['no user parameter', encodeStartup({ database: CLUSTER_DB }), /no PostgreSQL user name/],
    ['missing final terminator', noTerminator(), /not terminated/],
  ];
  test.each(cases)('%s', async (_name, bytes, message) => {
    const r = await exchange(gw.host, gw.port, bytes);
    expect(r.closed).toBe(true);
    if (message.source === 'invalid length of startup packet') {
      // PostgreSQL logs this (COMMERROR) and closes without a word.
      expect(r.messages).toEqual([]);
      return;
    }
    expectFatal08P01(r.messages, message);
  });

  test.each([
    ['no secret key (length 12)', untypedPacket(Buffer.from([0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1]))],
    ['a 257-byte secret key', encodeCancelRequest(1, Buffer.alloc(257, 7))],
  ])(
    'CancelRequest of the wrong length: %s → closed without a word, as PostgreSQL does',
    async (_name, bytes) => {
      const r = await exchange(gw.host, gw.port, bytes);
      expect(r.closed).toBe(true);
      expect(r.messages).toEqual([]);
    },
  );
});

describe('bad typed messages after authentication: FATAL 08P01, close, the upstream never sees them', () => {
  const cases: Array<[string, (marker: number) => Buffer, RegExp]> = [
    [
      'length 3 (< 4)',
      (m) => Buffer.concat([typedHeader('Q', 3), insertBody(m)]),
      /invalid message length 3/,
    ],
    ['length 0', (m) => Buffer.concat([typedHeader('Q', 0), insertBody(m)]), /invalid message length 0/],
    [
      'length max_message_bytes + 1',
      (m) => Buffer.concat([typedHeader('Q', MAX_MESSAGE_BYTES + 1), insertBody(m)]),
      /exceeds the limit/,
    ],
    [
      'length 2^31-1',
      (m) => Buffer.concat([typedHeader('Q', 0x7fffffff), insertBody(m)]),
      /exceeds the limit/,
    ],
    [
      'length 2^31',
      (m) => Buffer.concat([typedHeader('Q', 0x80000000), insertBody(m)]),
      /invalid message length/,
    ],
    [
      'length 2^32-1',
      (m) => Buffer.concat([typedHeader('Q', 0xffffffff), insertBody(m)]),
      /invalid message length/,
    ],
    ['unknown type z', (m) => typed('z', insertBody(m)), /invalid frontend message type/],
    ['unknown type NUL', (m) => typed('\0', insertBody(m)), /invalid frontend message type/],
    ['backend-only type T', (m) => typed('T', insertBody(m)), /message type/],
  ];
  test.each(cases.map(([name, make, re], i) => [name, make, re, 100 + i] as const))(
    '%s',
    async (_name, make, message, marker) => {
      const app = newApp('typed');
      const c = await loggedIn(app);
      try {
        c.write(make(marker));
        expectFatal08P01(await c.readToClose(), message);
        expect(c.isClosed).toBe(true);
      } finally {
        c.destroy();
      }
      await settle();
      expect(await markerRows(marker)).toBe(0);
      expect(serverLogFor(app).filter((l) => l.includes('framing_t'))).toEqual([]);
    },
  );

  // Messages pgward forwards without judging are still decoded: a body it does not understand
  // closes the connection, and nothing after it (here an INSERT) reaches the server.
  const int32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  test.each(
    [
      [
        'Execute with trailing bytes',
        typed('E', Buffer.concat([Buffer.from('\0'), int32(0), Buffer.from('x')])),
      ],
      ['Execute without its row count', typed('E', Buffer.from('\0'))],
      ['Describe of target X', typed('D', Buffer.from('X\0'))],
      ['Sync with a body', typed('S', Buffer.from('x'))],
      ['Flush with a body', typed('H', Buffer.from('x'))],
      ['CopyDone with a body', typed('c', Buffer.from('x'))],
      ['CopyFail without its terminator', typed('f', Buffer.from('oops'))],
    ].map(([name, frame], i) => [name, frame, 300 + i] as const),
  )('malformed unjudged message: %s', async (_name, frame, marker) => {
    const app = newApp('unjudged');
    const c = await loggedIn(app);
    try {
      c.write(Buffer.concat([frame as Buffer, typed('Q', insertBody(marker))]));
      expectFatal08P01(await c.readToClose(), /trailing bytes|truncated|invalid target|not terminated/);
      expect(c.isClosed).toBe(true);
    } finally {
      c.destroy();
    }
    await settle();
    expect(await markerRows(marker)).toBe(0);
  });

  test.each([
    ['md5_user', 5, 201],
    ['scram_user', 10, 202],
  ])(
    'Query instead of the password response (%s, AuthenticationRequest %i)',
    async (user, authCode, marker) => {
      const app = newApp('preauth');
      const c = await WireClient.connect(gw.host, gw.port);
      try {
        c.write(encodeStartup({ user, database: CLUSTER_DB, application_name: app }));
        const r = await c.next();
        expect(r?.type).toBe('R');
        expect(r?.body.readInt32BE(0)).toBe(authCode);
        c.write(encodeQuery(insertSql(marker)));
        expectFatal08P01(await c.readToClose(), /expected password response/);
        expect(c.isClosed).toBe(true);
      } finally {
        c.destroy();
      }
      await settle();
      expect(await markerRows(marker)).toBe(0);
      expect(serverLogFor(app).filter((l) => l.includes('framing_t'))).toEqual([]);
    },
  );

  test('COPY FROM STDIN completes normally (the control case)', async () => {
    const app = newApp('copy-ok');
    const c = await loggedIn(app);
    try {
      c.write(encodeQuery('COPY framing_t FROM STDIN'));
      expect((await c.next())?.type).toBe('G');
      c.write(Buffer.concat([encodeCopyData('300\n'), encodeCopyDone()]));
      const msgs = await c.readReady();
      expect(errorsOf(msgs)).toEqual([]);
      expect(await markerRows(300)).toBe(1);
    } finally {
      c.destroy();
    }
    // The server-log check used by the other cases does see what gets through.
    expect(serverLogFor(app).some((l) => l.includes('statement: COPY framing_t FROM STDIN'))).toBe(true);
  });

  test('Query in the middle of COPY FROM STDIN: FATAL 08P01, neither the copy nor the Query happens', async () => {
    const app = newApp('copy-bad');
    const c = await loggedIn(app);
    try {
      c.write(encodeQuery('COPY framing_t FROM STDIN'));
      expect((await c.next())?.type).toBe('G');
      c.write(encodeCopyData('301\n'));
      c.write(encodeQuery(insertSql(302)));
      expectFatal08P01(await c.readToClose(), /during COPY from stdin/);
    } finally {
      c.destroy();
    }
    await settle();
    expect(await markerRows(301)).toBe(0);
    expect(await markerRows(302)).toBe(0);
    // By the statement text: a bare '302' also matches a log line's milliseconds.
    expect(serverLogFor(app).filter((l) => l.includes(insertSql(302)))).toEqual([]);
  });
});

describe('chunking does not change anything', () => {
  const queries = [
    'SELECT 1',
    `SELECT current_user, 'a;b' AS s`,
    'SELECT * FROM (VALUES (1), (2), (3)) v(x)',
    'SELECT 1/0',
    'SELECT pg_terminate_backend(1)', // denied by the shipped policy
    'BEGIN; SELECT 2; COMMIT',
  ];

  /** Messages with the parts that legitimately differ between connections neutralised. */
  function normalise(msgs: BackendMessage[]): string[] {
    return msgs.map((m) => {
      if (m.type === 'K') return 'K';
      if (m.type === 'E') {
        const f = readErrorFields(m.body);
        return `E ${f.severity} ${f.code} ${f.message} ${(f.detail ?? '').replace(/Decision [^ ]+\./, 'Decision X.')}`;
      }
      return `${m.type} ${m.body.toString('hex')}`;
    });
  }

  async function converse(onePerWrite: boolean): Promise<string[]> {
    const c = await WireClient.connect(gw.host, gw.port);
    const send = async (b: Buffer): Promise<void> => {
      if (!onePerWrite) return c.write(b);
      for (let i = 0; i < b.length; i++) {
        c.write(b.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    try {
      await send(
        encodeStartup({ user: 'trust_user', database: CLUSTER_DB, application_name: 'pgward-chunking' }),
      );
      const startup = await c.readReady(1, 10_000);
      await send(Buffer.concat(queries.map(encodeQuery)));
      const answers = await c.readReady(queries.length, 10_000);
      return normalise([...startup, ...answers]);
    } finally {
      c.destroy();
    }
  }

  test('startup + several queries, one byte per write and as one write: identical responses', async () => {
    const whole = await converse(false);
    const bytewise = await converse(true);
    expect(bytewise).toEqual(whole);
    // The conversation really happened: rows, the server's own error, the policy's denial.
    expect(whole.filter((m) => m.startsWith('Z'))).toHaveLength(1 + queries.length);
    expect(whole).toContainEqual(expect.stringMatching(/^E ERROR 22012 division by zero/));
    expect(whole).toContainEqual(
      expect.stringMatching(/^E ERROR 42501 permission denied by policy: function pg_terminate_backend/),
    );
  });
});

describe('random bytes (fast-check)', () => {
  test('the gateway stays alive and the upstream runs nothing from them', async () => {
    const app = newApp('fuzz');
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        async (afterStartup, bytes) => {
          runs++;
          let c: WireClient;
          if (afterStartup) c = await loggedIn(app);
          else c = await WireClient.connect(gw.host, gw.port);
          try {
            c.write(Buffer.from(bytes));
            await Promise.race([c.closed, new Promise((r) => setTimeout(r, 150))]);
            // Whatever came back is well-formed protocol, and any error is 08P01.
            const { messages, rest } = splitBackendMessages(c.allBytes);
            expect(rest).toHaveLength(0);
            for (const e of errorsOf(messages)) expect(e.code).toBe('08P01');
          } finally {
            c.destroy();
          }
        },
      ),
      { numRuns: 50, seed: 20240501 },
    );
    expect(runs).toBe(50);
    expect(gw.proc.exitCode).toBeNull();
    const health = await gw.admin('/healthz');
    expect(health.status).toBe(200);
    await settle();
    expect(serverLogFor(app).filter((l) => /statement:|execute|ERROR/.test(l))).toEqual([]);
    // And it still serves.
    const c = await loggedIn(newApp('after-fuzz'));
    try {
      const msgs = await c.query('SELECT 7');
      expect(msgs.some((m) => m.type === 'D')).toBe(true);
    } finally {
      c.destroy();
    }
  });
});

describe('upstream side: bytes after the server’s S answer', () => {
  test('a fake server that answers S plus smuggled messages: the client gets FATAL 08006, nothing else', async () => {
    // AuthenticationOk + ReadyForQuery appended to 'S', as a MITM would inject them in plaintext.
    const injected = Buffer.from([
      ...Buffer.from('S'),
      ...[0x52, 0, 0, 0, 8, 0, 0, 0, 0],
      ...[0x5a, 0, 0, 0, 5, 0x49],
    ]);
    const fake = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.write(injected));
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const port = (fake.address() as net.AddressInfo).port;
    const g = await startGateway({
      upstream: `127.0.0.1:${port}`,
      config: { upstream: { tls: { mode: 'require' } } },
    });
    try {
      const r = await exchange(g.host, g.port, encodeStartup({ user: 'trust_user', database: CLUSTER_DB }));
      expect(r.closed).toBe(true);
      expect(r.messages.map((m) => m.type)).toEqual(['E']);
      expect(errorsOf(r.messages)[0]).toMatchObject({ severity: 'FATAL', code: '08006' });
      await g.waitForLog(
        (l) => l.msg === 'cannot connect upstream' && /after the SSLRequest answer/.test(String(l.err)),
      );
    } finally {
      await g.stop();
      fake.close();
    }
  });
});
