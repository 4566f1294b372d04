/**
 * What the SQL classifier tells the policy about one statement. These objects are copied into the
 * policy input document (`statements[]`), so every field name is snake_case and part of input
 * version 1 (docs/policy-input.md).
 */

export type RelationAccess = 'read' | 'write' | 'ddl';

export interface RelationRef {
  /** Schema as written, or null when unqualified. */
  schema: string | null;
  name: string;
  access: RelationAccess;
}

export type CopyDirection = 'from' | 'to';

export interface CopyInfo {
  direction: CopyDirection;
  /** COPY ... FROM STDIN / TO STDOUT */
  stdio: boolean;
  /** COPY ... PROGRAM '...' */
  program: boolean;
  /** Server-side file name, when COPY reads or writes a file on the server. */
  filename: string | null;
  /** COPY (query) TO ... : true when the source is a query rather than a table. */
  query: boolean;
}

export type TransactionMode = 'read_write' | 'read_only' | null;

export interface TransactionInfo {
  /** BEGIN, START, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, ROLLBACK_TO, PREPARE, COMMIT_PREPARED, ROLLBACK_PREPARED, SET_TRANSACTION */
  kind: string;
  mode: TransactionMode;
}

export interface PreparedInfo {
  /** PREPARE name AS ... / EXECUTE name / DEALLOCATE name (null = ALL) */
  kind: 'prepare' | 'execute' | 'deallocate' | 'discard';
  name: string | null;
  /**
   * PREPARE: the classification of the inner statement (filled by the classifier).
   * EXECUTE: the classification of the statement that `name` was prepared with, filled by the input
   * builder from the session's SQL-level prepared-statement registry; absent when the name is unknown
   * to pgward (policies must deny an EXECUTE whose inner statement is unknown).
   */
  inner?: StatementInfo;
}

export interface SettingInfo {
  /** SET / RESET / SET LOCAL / set_config(...) */
  name: string;
  /** The value as text when it is a constant, null for RESET or non-constant. */
  value: string | null;
  local: boolean;
  via: 'set' | 'reset' | 'set_config';
}

/**
 * A call of a built-in function that runs SQL given as a string (ts_stat, ts_rewrite,
 * query_to_xml, …; gateway/src/sql/sql-text-functions.ts). When `classified`, the string was a
 * constant that parses as queries, and their effects (relations, functions, settings, role
 * changes, writes) are part of the calling statement's own facts; otherwise nothing is known about
 * what it runs.
 */
export interface SqlTextCall {
  function: string;
  classified: boolean;
}

/**
 * A column the statement reads or writes (docs/policy-input.md, "columns"; gateway/src/sql/columns.ts).
 * `table` (and `schema`) when the query says which relation the column belongs to, else null;
 * `star` for `*` / `t.*` (read) and an INSERT without a column list (write), with `column` null.
 */
export interface ColumnInfo {
  schema: string | null;
  table: string | null;
  column: string | null;
  access: 'read' | 'write';
  star: boolean;
}

export interface StatementInfo {
  /** Command tag-like name: SELECT, INSERT, UPDATE, DELETE, MERGE, CREATE TABLE, DROP, ... */
  command: string;
  /** libpg-query parse tree node name: SelectStmt, DeleteStmt, ... */
  node: string;
  /** The statement's own SQL text (sliced from the source text). */
  sql: string;
  /** libpg-query fingerprint (hex). */
  fingerprint: string;
  relations: RelationRef[];
  /** Every function called anywhere in the statement, as written (lower-cased, schema-qualified when written so). */
  functions: string[];
  /** DELETE/UPDATE: whether a WHERE clause is present; null for other statements. */
  has_where: boolean | null;
  /** True when nothing in the statement writes data, changes schema, roles, settings or has side effects known to the classifier. */
  read_only: boolean;
  ddl: boolean;
  /** SET ROLE, SET SESSION AUTHORIZATION, RESET ROLE/ALL, set_config('role'|'session_authorization', ...) */
  role_change: boolean;
  /** Utility class for policy matching: 'do', 'create_function', 'alter_system', 'load', 'create_extension', 'grant', 'revoke', 'create_rule', 'create_trigger', ... ; null for plain DML. */
  utility: string | null;
  copy: CopyInfo | null;
  transaction: TransactionInfo | null;
  prepared: PreparedInfo | null;
  settings: SettingInfo[];
  /** Calls that run SQL from a string argument; absent when there are none. */
  sql_text_calls?: SqlTextCall[];
  /** Columns read and written; set on every statement classify() returns. */
  columns?: ColumnInfo[];
}

export interface Classification {
  statements: StatementInfo[];
  /** null when the text parsed; otherwise the parser's message. Never guess statements on error. */
  parse_error: string | null;
}
