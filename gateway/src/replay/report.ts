/**
 * Replay reports: a summary (totals, decisions by outcome and message type) and the changes found
 * against a baseline or an expectations file, as text, JSON or JUnit XML.
 */
import type { Change } from './diff';
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
  changes: Change[];
  by_kind: Record<string, number>;
}

export interface Report {
  summary: Summary;
  comparisons: Comparison[];
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

function describeOutcome(o: Change['before']): string {
  if (o === null) return 'not judged';
  const alerts = o.alerts.length > 0 ? ` alerts=[${o.alerts.map((a) => a.rule).join(', ')}]` : '';
  const reasons = !o.allow && o.reasons.length > 0 ? ` (${o.reasons.join('; ')})` : '';
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
      `${c.changes.length} change(s) against ${c.against} ${c.source} (${c.compared} decisions compared)`,
    );
    for (const ch of c.changes) {
      out.push(`  ${ch.kind.padEnd(11)} ${ch.type.padEnd(14)} user=${ch.user} db=${ch.database} ${ch.key}`);
      out.push(`      sql:    ${oneLine(ch.sql)}`);
      out.push(`      before: ${describeOutcome(ch.before)}`);
      out.push(`      after:  ${describeOutcome(ch.after)}`);
      if (ch.alerts_added.length > 0) out.push(`      alerts added:   ${ch.alerts_added.join(', ')}`);
      if (ch.alerts_removed.length > 0) out.push(`      alerts removed: ${ch.alerts_removed.join(', ')}`);
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
      `${c.against}: ${c.changes.length === 0 ? 'no changes' : `${c.changes.length} changes (${kinds})`}`,
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
 * JUnit XML: one testsuite per comparison, one testcase per changed decision (a failure) plus one
 * passing testcase standing for the unchanged ones; without a comparison, one passing suite.
 */
export function formatJunit(r: Report): string {
  const s = r.summary;
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const failures = r.comparisons.reduce((n, c) => n + c.changes.length, 0);
  const suites = r.comparisons.length > 0 ? r.comparisons : null;
  const tests = suites ? suites.reduce((n, c) => n + c.changes.length + 1, 0) : 1;
  out.push(
    `<testsuites name="pgward replay" tests="${tests}" failures="${failures}" errors="0" time="${s.seconds.toFixed(3)}">`,
  );
  if (!suites) {
    out.push(
      `  <testsuite name="pgward replay" tests="1" failures="0" errors="0" time="${s.seconds.toFixed(3)}">`,
    );
    out.push(
      `    <testcase classname="pgward.replay" name="${escapeXml(`${s.decisions.total} decisions replayed`)}"/>`,
    );
    out.push('  </testsuite>');
  } else {
    for (const c of suites) {
      const name = `pgward replay against ${c.against} ${c.source}`;
      out.push(
        `  <testsuite name="${escapeXml(name)}" tests="${c.changes.length + 1}" failures="${c.changes.length}" errors="0" time="${s.seconds.toFixed(3)}">`,
      );
      out.push(
        `    <testcase classname="pgward.replay.${c.against}" name="${escapeXml(`${c.compared - c.changes.length} decisions unchanged`)}"/>`,
      );
      for (const ch of c.changes) {
        const caseName = `${ch.key} ${ch.type} ${oneLine(ch.sql, 100)}`;
        const body = [
          `user=${ch.user} database=${ch.database}`,
          `sql: ${ch.sql ?? '-'}`,
          `before: ${describeOutcome(ch.before)}`,
          `after: ${describeOutcome(ch.after)}`,
        ].join('\n');
        out.push(
          `    <testcase classname="pgward.replay.${c.against}.${escapeXml(ch.user || 'unknown')}" name="${escapeXml(caseName)}">`,
        );
        out.push(
          `      <failure type="${escapeXml(ch.kind)}" message="${escapeXml(`${ch.kind}: ${oneLine(ch.sql, 100)}`)}">${escapeXml(body)}</failure>`,
        );
        out.push('    </testcase>');
      }
      out.push('  </testsuite>');
    }
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
