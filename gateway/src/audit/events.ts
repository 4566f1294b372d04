/**
 * What the audit log, the statement log and the decision log have in common: the same field names
 * for the same facts (docs/audit-events.schema.json, docs/audit.md). Every record carries
 * `timestamp`, `connection_id`, `decision_id` (statements and audit events), `revision` and
 * `rule_ids`; audit events and statement records describe the connection with the same
 * `connection` object and the SQL with the same `sql` / `statements` fields, redacted the same way.
 */
import type { ErrorCode } from '../errors';
import { gatewayRuleId } from '../policy/decision';
import type { Alert, ConnectionInfo, Denial, TlsInfo } from '../policy/types';
import type { RelationRef, StatementInfo } from '../sql/types';
import { normalizeSql, redactParseError, redactVerdicts, type RedactOptions } from './redact';

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

/** A decision's denials, reasons and alerts as written: copies, parser quotes redacted when `redact.literals`. */
export function eventVerdicts(
  d: { denials: readonly Denial[]; reasons: readonly string[]; alerts: readonly Alert[] },
  redact: RedactOptions,
): { denials: Denial[]; reasons: string[]; alerts: Alert[] } {
  if (redact.literals) return redactVerdicts(d);
  return {
    denials: d.denials.map((x) => ({ ...x })),
    reasons: [...d.reasons],
    alerts: d.alerts.map((a) => ({ ...a })),
  };
}

export function eventParseError(message: string | null | undefined, redact: RedactOptions): string | null {
  const m = message ?? null;
  return redact.literals ? redactParseError(m) : m;
}

/**
 * The rule ids of a decision, in order, without duplicates: each denial's `rule`, then each
 * alert's `rule`; a fail-closed deny without denials is named after its stage code
 * (`pgward.policy_undefined`…, policy/decision.ts gatewayRuleId).
 */
export function ruleIdsOf(d: {
  readonly denials: readonly Pick<Denial, 'rule'>[];
  readonly alerts: readonly Pick<Alert, 'rule'>[];
  readonly error_code?: ErrorCode | null;
}): string[] {
  const ids = new Set<string>();
  for (const r of d.denials) ids.add(r.rule);
  if (d.denials.length === 0 && d.error_code) ids.add(gatewayRuleId(d.error_code));
  for (const a of d.alerts) if (a.rule !== '') ids.add(a.rule);
  return [...ids];
}

/** Rows a command affected or returned, from the CommandComplete tag (`INSERT 0 5`, `SELECT 3`…); null when the tag has no count. */
export function rowsOfCommandTag(tag: string): number | null {
  // https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COMMANDCOMPLETE
  const m = /^(?:INSERT \d+|SELECT|UPDATE|DELETE|MERGE|FETCH|MOVE|COPY) (\d+)$/.exec(tag);
  return m ? Number(m[1]) : null;
}
