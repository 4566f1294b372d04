/**
 * Replay reports: a summary (totals, decisions by outcome and message type) and the changes found
 * against a baseline or an expectations file — grouped by statement fingerprint, message type,
 * change kind and rule ids, each group with its count and one example — as text, JSON or JUnit XML
 * (one test case per group). With --show-decisions, the candidate's decisions grouped the same way.
 */
import type { Change, ChangeGroup, DecisionGroup, ExpectDenial } from './diff';
import type { ReplayDecision } from './replay';

export interface TypeCounts {
  total: number;
  allow: number;
  deny: number;
  alert: number;
}

export interface Summary {
  captures: string[];
  bundle: string;
  revision: string;
  records: number;
  frames: number;
  connections: number;
  decisions: TypeCounts;
  by_type: Record<string, TypeCounts>;
  seconds: number;
  frames_per_second: number;
  warnings: string[];
}

export interface Comparison {
  against: 'baseline' | 'expect';
  /** Bundle path or expectations file. */
  source: string;
  compared: number;
  /** Number of changed decisions (the sum of the groups' counts). */
  changed: number;
  groups: ChangeGroup[];
  by_kind: Record<string, number>;
}

export interface Report {
  summary: Summary;
  comparisons: Comparison[];
  /** --show-decisions: what the candidate decided, grouped. */
  decisions?: DecisionGroup[];
}

export class Tally {
  readonly total: TypeCounts = { total: 0, allow: 0, deny: 0, alert: 0 };
  readonly byType: Record<string, TypeCounts> = {};

  add(d: ReplayDecision): void {
    const t = (this.byType[d.type] ??= { total: 0, allow: 0, deny: 0, alert: 0 });
    for (const c of [this.total, t]) {
      c.total++;
      if (d.allow) c.allow++;
      else c.deny++;
      if (d.alerts.length > 0) c.alert++;
    }
  }
}

export function countKinds(changes: readonly Change[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of changes) out[c.kind] = (out[c.kind] ?? 0) + 1;
  return out;
}

function oneLine(s: string | null, max = 160): string {
  if (s === null) return '-';
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(rows[0]!), sep, ...rows.slice(1).map(line)].join('\n');
}

const ruleList = (ids: readonly string[]): string => (ids.length === 0 ? '-' : ids.join(', '));
const denialList = (ds: readonly ExpectDenial[]): string =>
  ds.map((d) => `${d.rule}: ${d.message}`).join('; ');

function describeOutcome(o: Change['before']): string {
  if (o === null) return 'not judged';
  const alerts = o.alerts.length > 0 ? ` alerts=[${o.alerts.map((a) => a.rule).join(', ')}]` : '';
  const reasons = !o.allow && o.denials.length > 0 ? ` (${denialList(o.denials)})` : '';
  return `${o.allow ? 'allow' : 'deny'}${reasons}${alerts}`;
}

export function formatText(r: Report): string {
  const s = r.summary;
  const out: string[] = [];
  out.push(`pgward replay: ${s.captures.join(', ')}`);
  out.push(`bundle ${s.bundle} (revision ${s.revision || '-'})`);
  out.push(
    `${s.connections} connections, ${s.frames} frames, ${s.decisions.total} decisions in ${s.seconds.toFixed(2)} s (${Math.round(s.frames_per_second)} frames/s)`,
  );
  for (const w of s.warnings) out.push(`warning: ${w}`);
  for (const c of r.comparisons) {
    out.push('');
    out.push(
      `${c.changed} change(s) in ${c.groups.length} group(s) against ${c.against} ${c.source} (${c.compared} decisions compared)`,
    );
    for (const g of c.groups) {
      const ch = g.example;
      out.push(
        `  ${g.kind.padEnd(13)} ${g.type.padEnd(14)} x${g.count}  rules: ${ruleList(g.rule_ids)}  fingerprint: ${g.fingerprint ?? '-'}`,
      );
      out.push(`      example: user=${ch.user} db=${ch.database} key=${ch.key}`);
      out.push(`      sql:    ${oneLine(ch.sql)}`);
      out.push(`      before: ${describeOutcome(ch.before)}`);
      out.push(`      after:  ${describeOutcome(ch.after)}`);
      if (ch.alerts_added.length > 0) out.push(`      alerts added:   ${ch.alerts_added.join(', ')}`);
      if (ch.alerts_removed.length > 0) out.push(`      alerts removed: ${ch.alerts_removed.join(', ')}`);
    }
  }
  if (r.decisions) {
    out.push('');
    out.push(`decisions of the candidate bundle, in ${r.decisions.length} group(s):`);
    for (const g of r.decisions) {
      out.push(
        `  ${(g.allow ? 'allow' : 'deny').padEnd(5)} ${g.type.padEnd(14)} x${g.count}  rules: ${ruleList(g.rule_ids)}  fingerprint: ${g.fingerprint ?? '-'}`,
      );
      out.push(
        `      example: user=${g.example.user} db=${g.example.database} sql: ${oneLine(g.example.sql)}`,
      );
      if (!g.allow && g.example.denials.length > 0)
        out.push(`      denials: ${denialList(g.example.denials)}`);
    }
  }
  out.push('');
  const rows: string[][] = [['message', 'decisions', 'allow', 'deny', 'alerts']];
  for (const [type, c] of Object.entries(s.by_type).sort())
    rows.push([type, `${c.total}`, `${c.allow}`, `${c.deny}`, `${c.alert}`]);
  const t = s.decisions;
  rows.push(['total', `${t.total}`, `${t.allow}`, `${t.deny}`, `${t.alert}`]);
  out.push(table(rows));
  for (const c of r.comparisons) {
    const kinds = Object.entries(c.by_kind)
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ');
    out.push(
      `${c.against}: ${c.changed === 0 ? 'no changes' : `${c.changed} changes in ${c.groups.length} groups (${kinds})`}`,
    );
  }
  return out.join('\n') + '\n';
}

export function formatJson(r: Report): string {
  return JSON.stringify(r, null, 2) + '\n';
}

export function escapeXml(s: string): string {
  // Characters XML 1.0 does not allow at all are dropped.
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/[<>&"']/g, (c) =>
      c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === '"' ? '&quot;' : '&apos;',
    );
}

/**
 * JUnit XML: one testsuite per comparison, one failing testcase per group of changes plus one
 * passing testcase standing for the unchanged decisions; without a comparison, one passing suite.
 * With --show-decisions, a suite of passing testcases, one per decision group.
 */
export function formatJunit(r: Report): string {
  const s = r.summary;
  const time = s.seconds.toFixed(3);
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const failures = r.comparisons.reduce((n, c) => n + c.groups.length, 0);
  const decisionCases = r.decisions?.length ?? 0;
  const tests =
    (r.comparisons.length > 0 ? r.comparisons.reduce((n, c) => n + c.groups.length + 1, 0) : 1) +
    decisionCases;
  out.push(
    `<testsuites name="pgward replay" tests="${tests}" failures="${failures}" errors="0" time="${time}">`,
  );
  if (r.comparisons.length === 0) {
    out.push(`  <testsuite name="pgward replay" tests="1" failures="0" errors="0" time="${time}">`);
    out.push(
      `    <testcase classname="pgward.replay" name="${escapeXml(`${s.decisions.total} decisions replayed`)}"/>`,
    );
    out.push('  </testsuite>');
  }
  for (const c of r.comparisons) {
    const name = `pgward replay against ${c.against} ${c.source}`;
    out.push(
      `  <testsuite name="${escapeXml(name)}" tests="${c.groups.length + 1}" failures="${c.groups.length}" errors="0" time="${time}">`,
    );
    out.push(
      `    <testcase classname="pgward.replay.${c.against}" name="${escapeXml(`${c.compared - c.changed} decisions unchanged`)}"/>`,
    );
    for (const g of c.groups) {
      const ch = g.example;
      const caseName = `${g.kind} ${g.type} x${g.count} [${ruleList(g.rule_ids)}] ${oneLine(ch.sql, 100)}`;
      const body = [
        `${g.count} decision(s) of this statement shape changed (${g.kind})`,
        `fingerprint: ${g.fingerprint ?? '-'}`,
        `rules: ${ruleList(g.rule_ids)}`,
        `example: user=${ch.user} database=${ch.database} key=${ch.key}`,
        `sql: ${ch.sql ?? '-'}`,
        `before: ${describeOutcome(ch.before)}`,
        `after: ${describeOutcome(ch.after)}`,
      ].join('\n');
      out.push(
        `    <testcase classname="pgward.replay.${c.against}.${g.kind}" name="${escapeXml(caseName)}">`,
      );
      out.push(
        `      <failure type="${escapeXml(g.kind)}" message="${escapeXml(`${g.kind} x${g.count}: ${oneLine(ch.sql, 100)}`)}">${escapeXml(body)}</failure>`,
      );
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  if (r.decisions) {
    out.push(
      `  <testsuite name="pgward replay decisions" tests="${decisionCases}" failures="0" errors="0" time="${time}">`,
    );
    for (const g of r.decisions) {
      const caseName = `${g.allow ? 'allow' : 'deny'} ${g.type} x${g.count} [${ruleList(g.rule_ids)}] ${oneLine(g.example.sql, 100)}`;
      out.push(`    <testcase classname="pgward.replay.decisions" name="${escapeXml(caseName)}"/>`);
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
