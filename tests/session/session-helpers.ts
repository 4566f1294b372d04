/**
 * Shared by tests/session: each case is measured directly against the local PostgreSQL first and
 * then through pgward, and the two transcripts must be the same. A transcript is what the server
 * answered, one line per backend message (error SQLSTATEs, command tags, row values, transaction
 * status), so a difference reads as a protocol diff.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import path from 'node:path';
import { encodeBind, encodeExecute, encodeSync, readErrorFields } from '../../gateway/src/protocol';
import { LOCAL_PG } from '../helpers/cluster';
import { buildBundleFromDir, REPO, startGateway, type RunningGateway } from '../helpers/gateway';
import { RawClient, type BackendMsg } from '../policy/raw-client';
import { recreateDatabase, dropDatabase } from '../proxy/proxy-helpers';

export { dropDatabase };

export interface Target {
  host: string;
  port: number;
}

export const DIRECT: Target = { host: LOCAL_PG.host, port: LOCAL_PG.port };

/** A per-process database (two runs of one file must not drop each other's) with t(id, v), ids 1..10. */
export async function sessionDatabase(base: string): Promise<string> {
  const name = `${base}_${process.pid}`;
  await recreateDatabase(name);
  const { client } = await RawClient.connect(DIRECT.host, DIRECT.port, { user: 'postgres', database: name });
  try {
    client.send(
      query(
        `CREATE TABLE t (id int PRIMARY KEY, v int);
         INSERT INTO t SELECT g, g FROM generate_series(1, 10) g;
         GRANT USAGE ON SCHEMA public TO PUBLIC;
         GRANT SELECT, INSERT, UPDATE, DELETE ON t TO PUBLIC;`,
      ),
    );
    const out = await client.readUntilReady();
    const err = out.find((m) => m.type === 'E');
    if (err) throw new Error(`setup of ${name} failed: ${readErrorFields(err.frame).message}`);
  } finally {
    client.close();
  }
  return name;
}

export interface SessionSuite {
  /** The database (sessionDatabase). */
  db: string;
  gw: RunningGateway;
  /** Where pgward listens. */
  through: Target;
}

/**
 * The setup the files here share, registered as beforeAll/afterAll: `before` (roles, say), a
 * per-process database with t (sessionDatabase), and a gateway in front of the local PostgreSQL
 * with the allow-all bundle (`allowAll`) or the shipped one, its audit log off and, with
 * `decisionLog`, its decision log on stdout with literals kept (what judgedBinds reads). The
 * fields are set once beforeAll has run.
 */
export function sessionSuite(
  base: string,
  opts: { allowAll?: boolean; decisionLog?: boolean; before?: () => Promise<void> } = {},
): SessionSuite {
  const suite = {} as SessionSuite;
  beforeAll(async () => {
    await opts.before?.();
    suite.db = await sessionDatabase(base);
    const bundle = opts.allowAll
      ? await buildBundleFromDir(path.join(REPO, 'tests', 'fixtures', 'bundles', 'allow-all'))
      : undefined;
    suite.gw = await startGateway({
      ...(bundle === undefined ? {} : { bundle }),
      config: opts.decisionLog
        ? {
            audit: { sink: 'none', redact: { literals: false } },
            decision_log: { enabled: true, sink: 'stdout' },
          }
        : { audit: { sink: 'none' } },
    });
    suite.through = { host: suite.gw.host, port: suite.gw.port };
  }, 120_000);
  afterAll(async () => {
    await suite.gw?.stop();
    if (suite.db) await dropDatabase(suite.db);
  });
  return suite;
}

/** Bind of `stmt` to the unnamed portal, Execute, Sync. */
export const bindExec = (stmt: string): Buffer[] => [
  encodeBind('', stmt, []),
  encodeExecute(''),
  encodeSync(),
];

/** Simple Query frame. */
export function query(sql: string): Buffer {
  const body = Buffer.from(`${sql}\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('Q', 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** The values of a DataRow (text format; null as "NULL"). */
export function rowValues(m: BackendMsg): string[] {
  const f = m.frame;
  const n = f.readInt16BE(5);
  const out: string[] = [];
  let off = 7;
  for (let i = 0; i < n; i++) {
    const len = f.readInt32BE(off);
    off += 4;
    if (len < 0) out.push('NULL');
    else {
      out.push(f.toString('utf8', off, off + len));
      off += len;
    }
  }
  return out;
}

/**
 * One line per message: "E <sqlstate>", "C <tag>", "D <v1,v2>", "Z <status>", and the bare type
 * letter for the rest (1 ParseComplete, 2 BindComplete, 3 CloseComplete, I EmptyQueryResponse, n,
 * t, T, s, …). NoticeResponse and ParameterStatus are left out: they are not what these cases are
 * about, and pgward may add notices of its own.
 */
export function transcript(msgs: readonly BackendMsg[]): string[] {
  const out: string[] = [];
  for (const m of msgs) {
    switch (m.type) {
      case 'N':
      case 'S':
        break;
      case 'E': {
        const e = readErrorFields(m.frame);
        out.push(`E ${e.code ?? '?'}`);
        break;
      }
      case 'C':
        out.push(`C ${m.frame.toString('utf8', 5, m.frame.length - 1)}`);
        break;
      case 'D':
        out.push(`D ${rowValues(m).join(',')}`);
        break;
      case 'Z':
        out.push(`Z ${String.fromCharCode(m.frame[5] as number)}`);
        break;
      default:
        out.push(m.type);
    }
  }
  return out;
}

/** The error messages in a batch (for test failure output). */
export function errorMessages(msgs: readonly BackendMsg[]): string[] {
  return msgs.filter((m) => m.type === 'E').map((m) => readErrorFields(m.frame).message ?? '');
}

/** Frames that end a batch with a ReadyForQuery: Sync ('S', length 4) and Query ('Q'). */
function readiesExpected(frames: readonly Buffer[]): number {
  let n = 0;
  for (const f of frames) {
    const t = String.fromCharCode(f[0] as number);
    if (t === 'Q' || (t === 'S' && f.readInt32BE(1) === 4)) n++;
  }
  return n;
}

/**
 * Connects as `user` to `database`, then sends each batch of frames at once and reads until as
 * many ReadyForQuery as the batch has Syncs and Queries. Returns each batch's messages.
 */
export async function runBatches(
  target: Target,
  params: { user: string; database: string },
  batches: ReadonlyArray<readonly Buffer[]>,
): Promise<BackendMsg[][]> {
  const { client, startup } = await RawClient.connect(target.host, target.port, params);
  try {
    const last = startup.at(-1);
    if (last?.type !== 'Z') throw new Error(`startup failed: ${transcript(startup).join(' ')}`);
    const out: BackendMsg[][] = [];
    for (const frames of batches) {
      client.send(...frames);
      const want = readiesExpected(frames);
      const msgs: BackendMsg[] = [];
      for (let i = 0; i < want; i++) msgs.push(...(await client.readUntilReady()));
      out.push(msgs);
    }
    return out;
  } finally {
    client.close();
  }
}

/** The transcripts of `runBatches`, one array per batch. */
export async function transcripts(
  target: Target,
  params: { user: string; database: string },
  batches: ReadonlyArray<readonly Buffer[]>,
): Promise<string[][]> {
  return (await runBatches(target, params, batches)).map(transcript);
}

type LogLine = Record<string, unknown>;
interface JudgedStatement {
  name?: string;
  sql?: string;
  statements?: Array<{ command?: string }>;
}
interface BindInput {
  message?: { type?: string; statement?: JudgedStatement | null };
}

function bindInputOf(l: LogLine): BindInput | null {
  const input = l.input as BindInput | undefined;
  return l.result && input?.message?.type === 'Bind' ? input : null;
}

/** The statement as pgward judged it: its SQL, or its command tags when the bundle leaves SQL text out. */
function describe(st: JudgedStatement | null | undefined): string | null {
  if (!st) return null;
  if (st.sql) return st.sql;
  return (st.statements ?? []).map((x) => x.command ?? '?').join('; ');
}

/**
 * What pgward judged for each Bind whose decision was logged after `gw.logs[since]` (the gateway
 * must run with `decision_log.enabled`): the statement it believed the Bind named (SQL text, or
 * its command tags when the log has no text), or null when it had no record. Waits until
 * `count` such entries were written.
 */
export async function judgedBinds(
  gw: { logs: LogLine[]; waitForLog(p: (l: LogLine) => boolean, t?: number): Promise<LogLine> },
  since: number,
  count: number,
  statementName?: string,
): Promise<Array<string | null>> {
  // With `statementName`, only Binds of that statement count: a decision of the previous test can
  // reach the log after `since` was taken (the gateway's stdout is read asynchronously).
  const binds = (): BindInput[] =>
    gw.logs
      .slice(since)
      .map(bindInputOf)
      .filter((b): b is BindInput => b !== null)
      .filter((b) => statementName === undefined || b.message?.statement?.name === statementName);
  if (binds().length < count) await gw.waitForLog(() => binds().length >= count, 10_000);
  return binds().map((b) => describe(b.message?.statement));
}
