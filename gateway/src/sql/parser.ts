/**
 * The one place that talks to libpg-query (PostgreSQL 18's own parser compiled to WebAssembly).
 * The wasm module loads asynchronously once; every call after that is synchronous.
 */
import { fingerprintSync, loadModule, parseSync, scanSync } from 'libpg-query';

let ready = false;
let loading: Promise<void> | null = null;

/** Loads the parser's wasm module. Safe to call any number of times, concurrently too. */
export async function initSqlParser(): Promise<void> {
  if (ready) return;
  if (loading === null) {
    loading = loadModule().then(
      () => {
        ready = true;
      },
      (err: unknown) => {
        loading = null;
        throw err;
      },
    );
  }
  await loading;
}

export function isSqlParserReady(): boolean {
  return ready;
}

function assertReady(): void {
  if (!ready) throw new Error('SQL parser not initialised: await initSqlParser() first');
}

/** One raw statement as libpg-query returns it (locations are UTF-8 byte offsets). */
export interface RawStmt {
  stmt: Record<string, unknown>;
  stmt_location?: number;
  stmt_len?: number;
}

/** Parses SQL text; throws the parser's error (a syntax error carries PostgreSQL's message). */
export function parseStatements(sql: string): RawStmt[] {
  assertReady();
  const tree = parseSync(sql) as unknown as { stmts?: RawStmt[] };
  return tree.stmts ?? [];
}

/**
 * libpg-query's fingerprintSync and scanSync (18.1) throw only on messages that start with "syntax
 * error" or "ERROR"; other parser errors come back as if they were results. A fingerprint is 16
 * hex digits, or the statement is not classified (fail closed).
 */
export function fingerprintStatement(sql: string): string {
  assertReady();
  const f = fingerprintSync(sql);
  if (!/^[0-9a-f]{16}$/.test(f)) throw new Error('the parser gave no fingerprint for a statement');
  return f;
}

export interface ScannedToken {
  /** UTF-8 byte offsets into the scanned text. */
  start: number;
  end: number;
  text: string;
  /** 0 for identifiers, constants and operators; > 0 for SQL keywords. */
  keywordKind: number;
}

/**
 * The scanner's tokens. Control characters (which SQL text that parsed holds only inside literals,
 * quoted identifiers and comments) are scanned as spaces, one byte for one: scanSync's JSON does not
 * escape them in token texts and would not parse.
 */
export function scanTokens(sql: string): ScannedToken[] {
  assertReady();
  return scanSync(sql.replace(/[\x01-\x08\x0b\x0c\x0e-\x1f]/g, ' ')).tokens;
}
