/**
 * Hand-made classifications for unit tests that need a statement without running the classifier
 * (policy input builders, the statement namespace).
 */
import type { Classification, StatementInfo } from './types';

/** A statement of `command` with every field at its plain default; `extra` overrides. */
export function stmt(command: string, sql: string, extra: Partial<StatementInfo> = {}): StatementInfo {
  return {
    command,
    node: command === 'SELECT' ? 'SelectStmt' : `${command[0]}${command.slice(1).toLowerCase()}Stmt`,
    sql,
    fingerprint: '0123456789abcdef',
    relations: [],
    functions: [],
    has_where: null,
    read_only: command === 'SELECT',
    ddl: false,
    role_change: false,
    utility: null,
    copy: null,
    transaction: null,
    prepared: null,
    settings: [],
    ...extra,
  };
}

/** A classification without a parse error. */
export const ok = (...statements: StatementInfo[]): Classification => ({ statements, parse_error: null });

/** `DELETE FROM t` without WHERE, and `SELECT 1`. */
export const del = stmt('DELETE', 'DELETE FROM t', {
  relations: [{ schema: null, name: 't', access: 'write' }],
  has_where: false,
});
export const sel = stmt('SELECT', 'SELECT 1');
