/**
 * What the audit log, the statement log and the decision log have in common: the same field names
 * for the same facts (docs/audit-events.schema.json, docs/audit.md). Every record carries
 * `timestamp`, `connection_id`, `decision_id` (statements and audit events), `revision` and
 * `rule_ids`; audit events and statement records describe the connection with the same
 * `connection` object and the SQL with the same `sql` / `statements` fields, redacted the same way.
 */
import type { Alert, ConnectionInfo, TlsInfo } from '../policy/types';
import type { RelationRef, StatementInfo } from '../sql/types';
import { normalizeSql, redactParseError, type RedactOptions } from './redact';

/** The connection as every record names it. */
export interface EventConnection {
  id: string;
  client_addr: string;
  client_port: number;
  user: string;
  database: string;
  application_name: string | null;
  tls: TlsInfo;
}

/** One statement of the SQL text, as every record names it. */
export interface EventStatement {
  command: string;
  fingerprint: string;
  sql: string;
  relations: RelationRef[];
}

export function eventConnection(c: EventConnection | ConnectionInfo): EventConnection {
  return {
    id: c.id,
    client_addr: c.client_addr,
    client_port: c.client_port,
    user: c.user,
    database: c.database,
    application_name: c.application_name,
    tls: { ...c.tls },
  };
}

/** SQL text as written to a log: literals replaced by `$n` when `redact.literals`. */
export function eventSql(sql: string | null | undefined, redact: RedactOptions): string | null {
  if (sql === null || sql === undefined) return null;
  return redact.literals ? normalizeSql(sql) : sql;
}

export function eventStatements(
  statements: readonly StatementInfo[],
  redact: RedactOptions,
): EventStatement[] {
  return statements.map((s) => ({
    command: s.command,
    fingerprint: s.fingerprint,
    sql: redact.literals ? normalizeSql(s.sql) : s.sql,
    relations: s.relations.map((r) => ({ ...r })),
  }));
}

export function eventParseError(message: string | null | undefined, redact: RedactOptions): string | null {
  const m = message ?? null;
  return redact.literals ? redactParseError(m) : m;
}

/** A denial reason: today a string; an object with its own rule id once the Rego gives one. */
export type ReasonLike = string | { rule?: unknown; message?: unknown };

/**
 * A stable id for a denial reason without one: `reason:` and the reason text folded to lower-case
 * ASCII words joined by `-` (at most 64 characters). Texts that differ only in case, punctuation
 * or spacing share the id.
 */
export function reasonRuleId(reason: string): string {
  const slug = reason
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/, '');
  return `reason:${slug === '' ? 'empty' : slug}`;
}

/**
 * The rule ids of a decision, in order, without duplicates: each denial's `rule` when the
 * decision gives one, else the id derived from its text (reasonRuleId), then each alert's `rule`.
 */
export function ruleIdsOf(d: {
  readonly reasons: readonly ReasonLike[];
  readonly alerts: readonly Pick<Alert, 'rule'>[];
}): string[] {
  const ids = new Set<string>();
  for (const r of d.reasons) {
    if (typeof r === 'string') ids.add(reasonRuleId(r));
    else if (typeof r.rule === 'string' && r.rule !== '') ids.add(r.rule);
    else if (typeof r.message === 'string') ids.add(reasonRuleId(r.message));
  }
  for (const a of d.alerts) if (a.rule !== '') ids.add(a.rule);
  return [...ids];
}

/** Rows a command affected or returned, from the CommandComplete tag (`INSERT 0 5`, `SELECT 3`…); null when the tag has no count. */
export function rowsOfCommandTag(tag: string): number | null {
  // https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COMMANDCOMPLETE
  const m = /^(?:INSERT \d+|SELECT|UPDATE|DELETE|MERGE|FETCH|MOVE|COPY) (\d+)$/.exec(tag);
  return m ? Number(m[1]) : null;
}
