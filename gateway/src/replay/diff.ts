/**
 * Comparing replayed decisions: against a baseline bundle's decisions of the same capture, or
 * against a checked-in expectations file. Decisions are matched by key and compared by outcome,
 * denials (rule id and message) and alerts only (decision ids, timings and revisions differ between runs).
 */
import fs from 'node:fs';
import { PgwardError, ErrorCodes } from '../errors';
import type { Alert } from '../policy/types';
import { ruleIdsOf } from '../audit/events';
import type { ReplayDecision } from './replay';

export const EXPECT_FORMAT = 'pgward-replay-expect';
/**
 * Version 2: content-derived keys (replay.ts), entries sorted by key, `fingerprint`.
 * Version 3: `denials` ({rule, message}) instead of `reasons` (strings).
 */
export const EXPECT_VERSION = 3;

/** A denial as expectations record it: the rule id and the message (the priority only orders them). */
export interface ExpectDenial {
  rule: string;
  message: string;
}

/** One line of an expectations file (and what a baseline decision is reduced to). */
export interface ExpectEntry {
  key: string;
  type: string;
  user: string;
  database: string;
  sql: string | null;
  /** libpg-query fingerprint of the (first) statement; null for startup and unparsable text. */
  fingerprint: string | null;
  allow: boolean;
  denials: ExpectDenial[];
  alerts: Alert[];
}

export type ChangeKind = 'allow-to-deny' | 'deny-to-allow' | 'alerts' | 'denials' | 'added' | 'removed';

/** What a change compares: outcome, denials and alerts. */
export interface Outcome {
  allow: boolean;
  denials: ExpectDenial[];
  alerts: Alert[];
}

export interface Change {
  key: string;
  kind: ChangeKind;
  type: string;
  user: string;
  database: string;
  sql: string | null;
  fingerprint: string | null;
  before: Outcome | null;
  after: Outcome | null;
  alerts_added: string[];
  alerts_removed: string[];
}

export function toExpect(d: ReplayDecision | ExpectEntry): ExpectEntry {
  return {
    key: d.key,
    type: d.type,
    user: d.user,
    database: d.database,
    sql: d.sql,
    fingerprint: d.fingerprint ?? null,
    allow: d.allow,
    denials: d.denials.map((x) => ({ rule: x.rule, message: x.message })),
    alerts: d.alerts.map((a) => ({ rule: a.rule, severity: a.severity, message: a.message })),
  };
}

const alertId = (a: Alert): string => `${a.rule} (${a.severity})`;
const alertFull = (a: Alert): string => `${a.rule}\u0000${a.severity}\u0000${a.message}`;
const denialFull = (d: ExpectDenial): string => `${d.rule}\u0000${d.message}`;

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.every((v, i) => v === y[i]);
}

/** Every difference between `before` and `after`, in the order of `after` (then removed ones). */
export function diffDecisions(before: readonly ExpectEntry[], after: readonly ExpectEntry[]): Change[] {
  const prev = new Map<string, ExpectEntry>();
  for (const e of before) prev.set(e.key, e);
  const changes: Change[] = [];
  const outcome = (e: ExpectEntry): Change['before'] => ({
    allow: e.allow,
    denials: e.denials,
    alerts: e.alerts,
  });
  for (const a of after) {
    const b = prev.get(a.key);
    prev.delete(a.key);
    const base = {
      key: a.key,
      type: a.type,
      user: a.user,
      database: a.database,
      sql: a.sql,
      fingerprint: a.fingerprint,
    };
    if (!b) {
      changes.push({
        ...base,
        kind: 'added',
        before: null,
        after: outcome(a),
        alerts_added: a.alerts.map(alertId),
        alerts_removed: [],
      });
      continue;
    }
    const alertsSame = sameList(b.alerts.map(alertFull), a.alerts.map(alertFull));
    const denialsSame = sameList(b.denials.map(denialFull), a.denials.map(denialFull));
    if (b.allow === a.allow && alertsSame && denialsSame) continue;
    const beforeIds = new Set(b.alerts.map(alertId));
    const afterIds = new Set(a.alerts.map(alertId));
    const kind: ChangeKind =
      b.allow !== a.allow
        ? b.allow
          ? 'allow-to-deny'
          : 'deny-to-allow'
        : !alertsSame
          ? 'alerts'
          : 'denials';
    changes.push({
      ...base,
      kind,
      before: outcome(b),
      after: outcome(a),
      alerts_added: [...afterIds].filter((x) => !beforeIds.has(x)),
      alerts_removed: [...beforeIds].filter((x) => !afterIds.has(x)),
    });
  }
  for (const b of prev.values()) {
    changes.push({
      key: b.key,
      type: b.type,
      user: b.user,
      database: b.database,
      sql: b.sql,
      fingerprint: b.fingerprint,
      kind: 'removed',
      before: outcome(b),
      after: null,
      alerts_added: [],
      alerts_removed: b.alerts.map(alertId),
    });
  }
  return changes;
}

/** Throws unless the file's first line is an expectations header (of any version). */
export function checkExpectHeader(file: string): void {
  let first = '';
  try {
    first = fs.readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  } catch (err) {
    throw new PgwardError(
      ErrorCodes.REPLAY_INPUT,
      `cannot read expectations ${file}: ${(err as Error).message}`,
    );
  }
  let head: { format?: unknown } | null = null;
  try {
    head = JSON.parse(first) as { format?: unknown } | null;
  } catch {
    head = null;
  }
  if (!head || head.format !== EXPECT_FORMAT)
    throw new PgwardError(
      ErrorCodes.REPLAY_INPUT,
      `${file}:1: not an expectations file (no "format": "${EXPECT_FORMAT}")`,
    );
}

export function readExpectFile(file: string): ExpectEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new PgwardError(
      ErrorCodes.REPLAY_INPUT,
      `cannot read expectations ${file}: ${(err as Error).message}`,
    );
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const fail = (n: number, why: string): never => {
    throw new PgwardError(ErrorCodes.REPLAY_INPUT, `${file}:${n}: ${why}`);
  };
  const head = (() => {
    try {
      return JSON.parse(lines[0] ?? 'null') as { format?: unknown; version?: unknown } | null;
    } catch {
      return null;
    }
  })();
  if (!head || head.format !== EXPECT_FORMAT)
    fail(1, `not an expectations file (no "format": "${EXPECT_FORMAT}")`);
  if (head!.version !== EXPECT_VERSION)
    fail(
      1,
      `unsupported expectations version ${String(head!.version)} (this pgward writes version ${EXPECT_VERSION}; rewrite the file with --update-expect)`,
    );
  return lines.slice(1).map((l, i) => {
    let e: Partial<ExpectEntry>;
    try {
      e = JSON.parse(l) as Partial<ExpectEntry>;
    } catch {
      return fail(i + 2, 'not JSON');
    }
    if (
      typeof e.key !== 'string' ||
      typeof e.allow !== 'boolean' ||
      !Array.isArray(e.denials) ||
      !e.denials.every(isExpectDenial) ||
      !Array.isArray(e.alerts)
    ) {
      return fail(i + 2, 'expected {"key", "allow", "denials": [{"rule", "message"}], "alerts", …}');
    }
    return {
      key: e.key,
      type: String(e.type ?? ''),
      user: String(e.user ?? ''),
      database: String(e.database ?? ''),
      sql: typeof e.sql === 'string' ? e.sql : null,
      fingerprint: typeof e.fingerprint === 'string' ? e.fingerprint : null,
      allow: e.allow,
      denials: e.denials.map((x) => ({ rule: x.rule, message: x.message })),
      alerts: e.alerts,
    };
  });
}

function isExpectDenial(x: unknown): x is ExpectDenial {
  if (typeof x !== 'object' || x === null) return false;
  const d = x as Record<string, unknown>;
  return typeof d['rule'] === 'string' && typeof d['message'] === 'string';
}

/** Orders keys `<hash>#<n>` by hash, then n as a number (capture order does not matter). */
export function compareKeys(a: string, b: string): number {
  const i = a.lastIndexOf('#');
  const j = b.lastIndexOf('#');
  const ha = i < 0 ? a : a.slice(0, i);
  const hb = j < 0 ? b : b.slice(0, j);
  if (ha !== hb) return ha < hb ? -1 : 1;
  return Number(a.slice(i + 1)) - Number(b.slice(j + 1));
}

/** Writes entries sorted by key, so that re-capturing the same workload rewrites the same file. */
export function writeExpectFile(file: string, entries: readonly ExpectEntry[]): void {
  const lines = [JSON.stringify({ format: EXPECT_FORMAT, version: EXPECT_VERSION })];
  for (const e of [...entries].sort((x, y) => compareKeys(x.key, y.key)))
    lines.push(JSON.stringify(toExpect(e)));
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, lines.join('\n') + '\n');
  fs.renameSync(tmp, file);
}

/** Changes that share a statement fingerprint, message type, change kind and rule ids. */
export interface ChangeGroup {
  kind: ChangeKind;
  type: string;
  /** The statement fingerprint; for messages without one (startup, unparsable text), null. */
  fingerprint: string | null;
  /** Rule ids of the decisions before and after (sorted; audit/events.ts ruleIdsOf). */
  rule_ids: string[];
  count: number;
  /** The first change of the group, in capture order. */
  example: Change;
}

function changeRuleIds(c: Change): string[] {
  const ids = new Set<string>();
  for (const o of [c.before, c.after]) if (o) for (const id of ruleIdsOf(o)) ids.add(id);
  return [...ids].sort();
}

/** Groups changes by (fingerprint, message type, kind, rule ids); groups in order of first appearance. */
export function groupChanges(changes: readonly Change[]): ChangeGroup[] {
  const groups = new Map<string, ChangeGroup>();
  for (const c of changes) {
    const rule_ids = changeRuleIds(c);
    const k = JSON.stringify([c.fingerprint, c.type, c.kind, rule_ids]);
    const g = groups.get(k);
    if (g) g.count++;
    else
      groups.set(k, {
        kind: c.kind,
        type: c.type,
        fingerprint: c.fingerprint,
        rule_ids,
        count: 1,
        example: c,
      });
  }
  return [...groups.values()];
}

/** Decisions that share a fingerprint, message type, outcome and rule ids (`--show-decisions`). */
export interface DecisionGroup {
  type: string;
  fingerprint: string | null;
  allow: boolean;
  rule_ids: string[];
  count: number;
  example: {
    key: string;
    user: string;
    database: string;
    sql: string | null;
    denials: ExpectDenial[];
    alerts: Alert[];
  };
}

export function groupDecisions(decisions: readonly ExpectEntry[]): DecisionGroup[] {
  const groups = new Map<string, DecisionGroup>();
  for (const d of decisions) {
    const rule_ids = ruleIdsOf(d).sort();
    const k = JSON.stringify([d.fingerprint, d.type, d.allow, rule_ids]);
    const g = groups.get(k);
    if (g) g.count++;
    else
      groups.set(k, {
        type: d.type,
        fingerprint: d.fingerprint,
        allow: d.allow,
        rule_ids,
        count: 1,
        example: {
          key: d.key,
          user: d.user,
          database: d.database,
          sql: d.sql,
          denials: d.denials,
          alerts: d.alerts,
        },
      });
  }
  return [...groups.values()];
}
