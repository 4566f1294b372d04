/**
 * Decision log entries in OPA's decision log event format, so that tools that read OPA decision
 * logs read pgward's: decision_id, labels, bundles, path, input, result, timestamp, metrics, and
 * `masked` listing the JSON Pointers that redaction rewrote.
 * https://www.openpolicyagent.org/docs/latest/management-decision-logs/
 */
import type { Logger } from 'pino';
import { ErrorCodes, type ErrorCode } from '../errors';
import type { Metrics } from '../metrics/metrics';
import type { Alert, Decision, Denial, InputDocument } from '../policy/types';
import { ruleIdsOf } from './events';
import { redactInput, redactVerdicts, type RedactOptions } from './redact';
import type { DecisionLogUploader } from './decision-log-upload';
import { createSink, type FileSinkOptions, type SinkDeps } from './sink';

export interface DecisionLogOptions {
  enabled: boolean;
  /** 0..1; 1 logs every decision. */
  sample_rate: number;
  sink: 'stdout' | 'file' | 'none';
  file: FileSinkOptions;
}

export interface DecisionLogEntry {
  decision_id: string;
  /** The session's connection id (the input's may be "": input_options.connection_identity). */
  connection_id?: string;
  labels: { app: 'pgward'; id: string; version: string };
  bundles: Record<string, { revision: string }>;
  /** The same revision as under `bundles` (the name audit events and statement records use). */
  revision: string;
  /** Denial and alert rule ids (events.ts ruleIdsOf), as audit events and statement records carry them. */
  rule_ids: string[];
  path: string;
  input: InputDocument;
  result: {
    allow: boolean;
    denials: Denial[];
    reasons: string[];
    alerts: Alert[];
    sqlstate: string | null;
    session_parameters: Record<string, string>;
  };
  /** Present when the decision is a fail-closed deny. */
  error?: { code: ErrorCode };
  timestamp: string;
  metrics: { timer_rego_query_eval_ns: number };
  masked?: string[];
}

export interface DecisionLogDeps {
  metrics: Pick<Metrics, 'auditSinkErrorsTotal' | 'decisionLogEntriesTotal'>;
  logger?: Logger | undefined;
  /** Redaction settings (the audit section's), applied to the input before it is written. */
  redact: RedactOptions;
  /** labels.id: this instance (e.g. a UUID made at start-up or the pod name). */
  instanceId: string;
  /** labels.version: pgward's version. */
  version: string;
  /** Key under `bundles` (default 'pgward'). */
  bundleName?: string;
  stream?: SinkDeps['stream'];
  now?: () => number;
  random?: () => number;
  /** Also sends every sampled entry to an OPA-compatible decision log service. */
  uploader?: Pick<DecisionLogUploader, 'push' | 'close'> | undefined;
}

export interface DecisionLog {
  /** Writes an entry for this decision when sampled. false only when a sampled entry was not written. */
  log(input: InputDocument, decision: Decision, path: string, connectionId?: string): boolean;
  healthy(): boolean;
  close(): Promise<void>;
}

export function buildDecisionLogEntry(
  input: InputDocument,
  decision: Decision,
  path: string,
  deps: Pick<DecisionLogDeps, 'redact' | 'instanceId' | 'version' | 'bundleName'>,
  now: Date = new Date(),
  connectionId: string = input.connection.id,
): DecisionLogEntry {
  const { input: redacted, masked } = redactInput(input, deps.redact);
  const entry: DecisionLogEntry = {
    decision_id: decision.id,
    connection_id: connectionId,
    labels: { app: 'pgward', id: deps.instanceId, version: deps.version },
    bundles:
      decision.revision === '' ? {} : { [deps.bundleName ?? 'pgward']: { revision: decision.revision } },
    revision: decision.revision,
    rule_ids: ruleIdsOf(decision),
    path,
    input: redacted,
    result: {
      allow: decision.allow,
      ...(deps.redact.literals
        ? redactVerdicts(decision)
        : { denials: decision.denials, reasons: decision.reasons, alerts: decision.alerts }),
      sqlstate: decision.sqlstate,
      session_parameters: decision.session_parameters,
    },
    timestamp: now.toISOString(),
    metrics: { timer_rego_query_eval_ns: Math.round(decision.eval_seconds * 1e9) },
  };
  if (decision.error_code !== null) entry.error = { code: decision.error_code };
  if (masked.length > 0) entry.masked = masked.map((p) => `/input${p}`);
  return entry;
}

export function createDecisionLog(opts: DecisionLogOptions, deps: DecisionLogDeps): DecisionLog {
  if (!opts.enabled) {
    return { log: () => true, healthy: () => true, close: () => Promise.resolve() };
  }
  if (!(opts.sample_rate >= 0 && opts.sample_rate <= 1)) {
    throw new Error('decision_log.sample_rate must be between 0 and 1');
  }
  const sink = createSink(opts, {
    name: 'decision_log',
    metrics: deps.metrics,
    logger: deps.logger,
    ...(deps.stream ? { stream: deps.stream } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  const random = deps.random ?? Math.random;
  const now = deps.now ?? Date.now;
  return {
    log(input, decision, path, connectionId) {
      if (opts.sample_rate < 1 && !(random() < opts.sample_rate)) return true;
      let line: string;
      try {
        const entry = buildDecisionLogEntry(
          input,
          decision,
          path,
          deps,
          new Date(now()),
          connectionId ?? input.connection.id,
        );
        deps.uploader?.push(entry);
        if (opts.sink === 'none') return true;
        line = JSON.stringify(entry) + '\n';
      } catch (err) {
        deps.logger?.error(
          { code: ErrorCodes.AUDIT_SINK, err: (err as Error).message },
          'decision log entry not serializable',
        );
        deps.metrics.auditSinkErrorsTotal.inc();
        return false;
      }
      const ok = sink.write(line);
      if (ok) deps.metrics.decisionLogEntriesTotal.inc();
      return ok;
    },
    healthy: () => sink.healthy(),
    close: async () => {
      await deps.uploader?.close();
      await sink.close();
    },
  };
}
