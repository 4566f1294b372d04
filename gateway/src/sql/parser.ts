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

export function fingerprintStatement(sql: string): string {
  assertReady();
  return fingerprintSync(sql);
}

export interface ScannedToken {
  /** UTF-8 byte offsets into the scanned text. */
  start: number;
  end: number;
  text: string;
  /** 0 for identifiers, constants and operators; > 0 for SQL keywords. */
  keywordKind: number;
}

export function scanTokens(sql: string): ScannedToken[] {
  assertReady();
  return scanSync(sql).tokens;
}
