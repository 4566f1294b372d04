/**
 * Differential fuzzer: pgward's reading of SQL bytes (readSqlText under the session's lexical
 * state, then the classifier's statement split and commands) against what PostgreSQL reports it
 * ran (one CommandComplete tag per statement of a simple Query, inside a transaction that is
 * rolled back). The generated texts use the tricks that make readers disagree: backslashes in
 * standard and E'' strings, doubled quotes, dollar quotes with and without tags, nested block
 * comments, line comments, quoted and U& identifiers, `;` `--` `/*` inside strings, and multibyte
 * characters of the client encoding whose second byte is ASCII (0x5C, 0x27, 0x7C...).
 *
 * A text pgward refuses (readSqlText) is fail-closed and counts as such; a text it classifies
 * must split into the statements the server ran, with the same commands, in the same order.
 */
import net from 'node:net';
import { classify, initSqlParser } from '../../gateway/src/sql/classify';
import { readSqlText, type LexicalState } from '../../gateway/src/sql/lexical';
import { encodeStartupMessage, PROTOCOL_3_0, readErrorFields } from '../../gateway/src/protocol';

/** mulberry32: a small seeded PRNG, so a failing seed replays exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzState {
  encoding: string;
  standardConformingStrings: boolean;
}

/** Characters (as the client's bytes) that the server accepts in each encoding; several end in ASCII. */
const CHARS: Record<string, number[][]> = {
  UTF8: [
    [0xc3, 0xa9],
    [0xe8, 0xa1, 0xa8],
    [0xf0, 0x9f, 0x98, 0x80],
  ],
  SJIS: [[0x95, 0x5c], [0x83, 0x5c], [0x82, 0xa0], [0xb1], [0x81, 0x7c], [0x88, 0x60]],
  BIG5: [
    [0xa4, 0x5c],
    [0xa4, 0x40],
    [0xa5, 0x7c],
    [0xb3, 0x5c],
  ],
  GBK: [
    [0x81, 0x5c],
    [0xb0, 0xa1],
    [0x81, 0x7c],
    [0x95, 0x60],
  ],
  GB18030: [
    [0x81, 0x5c],
    [0xb0, 0xa1],
    [0x81, 0x30, 0x81, 0x30],
    [0x81, 0x7c],
  ],
  LATIN1: [[0xe9], [0xff]],
  WIN1251: [[0xc0], [0xe9]],
};

export const FUZZ_STATES: FuzzState[] = [
  { encoding: 'UTF8', standardConformingStrings: true },
  { encoding: 'UTF8', standardConformingStrings: false },
  { encoding: 'SJIS', standardConformingStrings: true },
  { encoding: 'BIG5', standardConformingStrings: true },
  { encoding: 'GBK', standardConformingStrings: true },
  { encoding: 'GB18030', standardConformingStrings: true },
  { encoding: 'LATIN1', standardConformingStrings: true },
  { encoding: 'WIN1251', standardConformingStrings: true },
];

type Part = string | number[];

/** One generated text: ASCII parts and client-encoding characters. */
export function generate(rand: () => number, state: FuzzState): Buffer {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const chars = CHARS[state.encoding] ?? [];
  const mb = (): Part => pick(chars);
  const ascii = ['a', ' ', ';', '-', '/', '*', "''", '\\', '$', '"', 'x', '|', '`'];
  const content = (): Part[] => {
    const out: Part[] = [];
    const n = Math.floor(rand() * 5);
    for (let i = 0; i < n; i++) out.push(rand() < 0.45 ? mb() : pick(ascii));
    return out;
  };
  const sqlInside = (): Part[] => [' ; DROP TABLE IF EXISTS fz_gone; SELECT ', ...content()];
  const literal = (): Part[] => {
    switch (Math.floor(rand() * 9)) {
      case 0:
        return ["'", ...content(), "'"];
      case 1:
        return ["E'", ...content().map((p) => (p === "''" ? "\\'" : p)), "'"];
      case 2:
        return ["E'", mb(), "'"]; // a character whose last byte may be a backslash
      case 3:
        return ["'\\' || '", ...sqlInside(), "' -- '"]; // the standard_conforming_strings smuggle
      case 4:
        return ["E'", mb(), "' || '", ...sqlInside(), "' -- '"]; // the multibyte smuggle
      case 5:
        return ['$$', ...content().filter((p) => p !== '$'), "'$$"];
      case 6:
        return ['$q$', ...content(), ';$q$'];
      case 7:
        return ["U&'d\\0061t\\+000061", ...content().filter((p) => typeof p !== 'string'), "'"];
      default:
        return [String(Math.floor(rand() * 100))];
    }
  };
  const expr = (): Part[] => (rand() < 0.3 ? [...literal(), ' || ', ...literal()] : literal());
  const comment = (): Part[] => {
    switch (Math.floor(rand() * 4)) {
      case 0:
        return ['/* ', ...content(), ' /* nested ; */ ', ...content(), ' */'];
      case 1:
        return ['-- ', ...content().filter((p) => p !== '\n'), '\n'];
      default:
        return [' '];
    }
  };
  const statement = (): Part[] => {
    switch (Math.floor(rand() * 9)) {
      case 0:
        return ['SELECT ', ...expr(), ' AS c'];
      case 1:
        return ['SELECT ', ...expr(), ', ', ...expr()];
      case 2:
        return ['INSERT INTO fz (a) VALUES (', ...expr(), '::text)'];
      case 3:
        return ['DELETE FROM fz WHERE a = ', ...expr(), '::text'];
      case 4:
        return ['UPDATE fz SET a = ', ...expr(), '::text WHERE false'];
      case 5:
        return ['SET application_name = ', ...literal()];
      case 6:
        return [
          'SELECT 1 AS ',
          rand() < 0.5 ? '"q;""' : 'U&"d!0061t" UESCAPE \'!\'',
          ...(rand() < 0.5 ? ['"'] : []),
        ];
      case 7:
        return ['DROP TABLE IF EXISTS fz_', String(Math.floor(rand() * 3))];
      default:
        return ['VALUES (', ...expr(), ')'];
    }
  };
  const parts: Part[] = [...comment()];
  const n = 1 + Math.floor(rand() * 3);
  for (let i = 0; i < n; i++) {
    parts.push(...statement(), ...comment());
    if (i < n - 1 || rand() < 0.5) parts.push(';', ...comment());
  }
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}

/** CommandComplete tag without its row counts: `INSERT 0 1` → `INSERT`, `SELECT 2` → `SELECT`. */
export function tagCommand(tag: string): string {
  return tag.replace(/( \d+)+$/, '');
}

/** A direct connection to PostgreSQL speaking raw simple-Query frames. */
export class Direct {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => undefined);
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  static async open(host: string, port: number, params: Record<string, string>): Promise<Direct> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host, port }, () => resolve(s));
      s.once('error', reject);
    });
    const d = new Direct(socket);
    socket.write(encodeStartupMessage(PROTOCOL_3_0, Object.entries(params)));
    const startup = await d.untilReady();
    if (startup.error !== null) throw new Error(`startup failed: ${startup.error}`);
    return d;
  }

  private async message(): Promise<{ type: string; frame: Buffer }> {
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length >= len + 1) {
          const frame = this.buf.subarray(0, len + 1);
          this.buf = this.buf.subarray(len + 1);
          return { type: String.fromCharCode(frame[0] as number), frame };
        }
      }
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** Tags and the first error, up to ReadyForQuery. */
  async untilReady(): Promise<{ tags: string[]; error: string | null }> {
    const tags: string[] = [];
    let error: string | null = null;
    for (;;) {
      const m = await this.message();
      if (m.type === 'C') tags.push(m.frame.subarray(5, m.frame.length - 1).toString('latin1'));
      else if (m.type === 'E' && error === null) {
        const f = readErrorFields(m.frame);
        error = `${f.code ?? ''} ${f.message ?? ''}`;
      } else if (m.type === 'Z') return { tags, error };
    }
  }

  async query(sql: Buffer): Promise<{ tags: string[]; error: string | null }> {
    const head = Buffer.alloc(5);
    head.write('Q', 0, 'latin1');
    head.writeInt32BE(sql.length + 5, 1);
    this.socket.write(Buffer.concat([head, sql, Buffer.from([0])]));
    return this.untilReady();
  }

  async querySql(sql: string): Promise<{ tags: string[]; error: string | null }> {
    return this.query(Buffer.from(sql, 'utf8'));
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface FuzzReport {
  runs: number;
  /** pgward refused the text (fail closed). */
  refused: number;
  /** pgward could not parse it: the shipped policy denies it (fail closed). */
  pgwardParseErrors: number;
  /** ... and the server ran at least one of its statements (pgward is stricter than the server). */
  pgwardOnlyParseErrors: number;
  /** The server could not parse it as a whole: nothing ran. */
  serverParseErrors: number;
  /** Statement splits and commands compared and equal. */
  agreed: number;
  /** The server ran statements pgward did not see, or different ones. */
  mismatches: Array<{
    seed: number;
    state: FuzzState;
    hex: string;
    pgward: string[];
    server: string[];
    error: string | null;
  }>;
}

export async function initFuzz(): Promise<void> {
  await initSqlParser();
}

/**
 * Runs `runs` generated texts per state on `direct` (a session in a scratch database with table
 * fz(a text)), each inside BEGIN … ROLLBACK.
 */
export async function fuzz(
  direct: Direct,
  seed: number,
  runs: number,
  /** The reader under test; the default is pgward's. Tests pass a naive one to prove the fuzzer can fail. */
  read: (bytes: Buffer, state: LexicalState) => ReturnType<typeof readSqlText> = readSqlText,
): Promise<FuzzReport> {
  const report: FuzzReport = {
    runs: 0,
    refused: 0,
    pgwardParseErrors: 0,
    pgwardOnlyParseErrors: 0,
    serverParseErrors: 0,
    agreed: 0,
    mismatches: [],
  };
  for (const state of FUZZ_STATES) {
    const lexical: LexicalState = {
      clientEncoding: state.encoding,
      standardConformingStrings: state.standardConformingStrings,
      changing: false,
    };
    await direct.querySql(
      `SET client_encoding = '${state.encoding}'; SET standard_conforming_strings = ${state.standardConformingStrings ? 'on' : 'off'}`,
    );
    for (let i = 0; i < runs; i++) {
      const caseSeed = (seed * 7919 + i * 104729 + FUZZ_STATES.indexOf(state)) >>> 0;
      const bytes = generate(prng(caseSeed), state);
      report.runs++;
      const text = read(bytes, lexical);
      if (!text.ok) {
        report.refused++;
        continue;
      }
      const c = classify(text.sql);
      await direct.querySql('BEGIN');
      const server = await direct.query(bytes);
      await direct.querySql('ROLLBACK');
      const pgward = c.statements.map((s) => s.command);
      const ran = server.tags.map(tagCommand);
      if (c.parse_error !== null) {
        report.pgwardParseErrors++;
        if (ran.length > 0) report.pgwardOnlyParseErrors++;
        continue;
      }
      if (ran.length === 0 && server.error !== null && /^42601 /.test(server.error)) {
        report.serverParseErrors++;
        continue;
      }
      // Statements after a failing one do not run: what ran must be a prefix of what pgward saw,
      // and all of it when the server reports no error.
      const prefix = pgward.slice(0, ran.length);
      const complete = server.error !== null || ran.length === pgward.length;
      if (
        complete &&
        prefix.length === ran.length &&
        prefix.every((cmd, k) => commandMatches(cmd, ran[k] as string))
      ) {
        report.agreed++;
      } else {
        report.mismatches.push({
          seed: caseSeed,
          state,
          hex: bytes.toString('hex'),
          pgward,
          server: server.tags,
          error: server.error,
        });
      }
    }
  }
  return report;
}

/** pgward's command name against the server's tag. */
function commandMatches(pgward: string, tag: string): boolean {
  return pgward === tag;
}
