/**
 * Every pgward metric is declared here, in one place (STYLE.md). `createMetrics()` registers them on
 * a registry and returns typed handles. Hot-path counters (bytes, frames) are plain number fields
 * that are added to the prom-client metric only when the registry is scraped, so the proxy pays one
 * addition per call and never hashes label objects per frame.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ErrorCodes, type ErrorCode } from '../errors';
import type { BundleInfo, Decision } from '../policy/types';
import { FastHistogram } from './fast-histogram';

export const METRIC_PREFIX = 'pgward_';
/** Gauge `pgward_ready{component}`; the sidecar finds it in the registry by this name. */
export const READY_METRIC = 'pgward_ready';

export const CONNECTION_OUTCOMES = [
  'accepted',
  'rejected_limit',
  'startup_denied',
  'tls_required',
  'login_timeout',
  'closed',
  'error',
] as const;
export type ConnectionOutcome = (typeof CONNECTION_OUTCOMES)[number];

/** Frontend message names, as in the PostgreSQL documentation (protocol-message-formats). */
export const FRONTEND_MESSAGE_TYPES = [
  'Bind',
  'CancelRequest',
  'Close',
  'CopyData',
  'CopyDone',
  'CopyFail',
  'Describe',
  'Execute',
  'Flush',
  'FunctionCall',
  'GSSENCRequest',
  'GSSResponse',
  'Parse',
  'PasswordMessage',
  'Query',
  'SASLInitialResponse',
  'SASLResponse',
  'SSLRequest',
  'StartupMessage',
  'Sync',
  'Terminate',
  'Unknown',
] as const;

/** Backend message names, as in the PostgreSQL documentation (protocol-message-formats). */
export const BACKEND_MESSAGE_TYPES = [
  'AuthenticationOk',
  'AuthenticationKerberosV5',
  'AuthenticationCleartextPassword',
  'AuthenticationMD5Password',
  'AuthenticationGSS',
  'AuthenticationGSSContinue',
  'AuthenticationSSPI',
  'AuthenticationSASL',
  'AuthenticationSASLContinue',
  'AuthenticationSASLFinal',
  'BackendKeyData',
  'BindComplete',
  'CloseComplete',
  'CommandComplete',
  'CopyData',
  'CopyDone',
  'CopyInResponse',
  'CopyOutResponse',
  'CopyBothResponse',
  'DataRow',
  'EmptyQueryResponse',
  'ErrorResponse',
  'FunctionCallResponse',
  'NegotiateProtocolVersion',
  'NoData',
  'NoticeResponse',
  'NotificationResponse',
  'ParameterDescription',
  'ParameterStatus',
  'ParseComplete',
  'PortalSuspended',
  'ReadyForQuery',
  'RowDescription',
  'Unknown',
] as const;

export type FrameDirection = 'frontend' | 'backend';
export type ByteDirection = 'client_to_upstream' | 'upstream_to_client';
export type DecisionPhase = 'startup' | 'message';
export type AuditKind = 'deny' | 'alert' | 'shadow';

/** Policy evaluation and SQL classification: 1 µs .. 10 ms, with headroom for pathological cases. */
export const LATENCY_BUCKETS = [
  1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 1e-1,
];

/** A counter increment that costs one addition; flushed into prom-client at scrape time. */
export interface FastCounter {
  inc(n?: number): void;
}

class PendingCount implements FastCounter {
  pending = 0;
  inc(n = 1): void {
    this.pending += n;
  }
}

export interface Metrics {
  readonly registry: Registry;
  readonly connectionsActive: Gauge<string>;
  readonly connectionsTotal: Counter<'outcome'>;
  readonly framesTotal: Counter<'direction' | 'type'>;
  readonly decisionsTotal: Counter<'outcome' | 'phase' | 'code'>;
  readonly alertsTotal: Counter<'rule' | 'severity'>;
  readonly errorsTotal: Counter<'code'>;
  readonly policyEvalSeconds: FastHistogram;
  readonly sqlClassifySeconds: Histogram<string>;
  readonly sqlCacheTotal: Counter<'result'>;
  readonly bundleInfo: Gauge<'revision' | 'source' | 'entrypoint'>;
  readonly bundleReloadsTotal: Counter<'result'>;
  readonly bundleLastReloadSuccess: Gauge<string>;
  readonly upstreamConnectErrorsTotal: Counter<string>;
  readonly bytesTotal: Counter<'direction'>;
  readonly auditEventsTotal: Counter<'kind'>;
  readonly auditSinkErrorsTotal: Counter<string>;
  readonly decisionLogEntriesTotal: Counter<string>;
  readonly shadowDisagreementsTotal: Counter<string>;
  readonly captureFramesTotal: Counter<string>;
  /** Statement log and decision log upload records by outcome (written, dropped; uploads: failed attempts). */
  readonly logRecordsTotal: Counter<'log' | 'outcome'>;
  readonly ready: Gauge<'component'>;

  /** Pre-bound hot-path counters. */
  readonly bytes: Readonly<Record<ByteDirection, FastCounter>>;
  readonly connection: Readonly<Record<ConnectionOutcome, FastCounter>>;
  readonly sqlCache: Readonly<{ hit: FastCounter; miss: FastCounter }>;
  readonly capturedFrames: FastCounter;
  /** Counts one frame; names outside the documented message set are counted as `Unknown`. */
  countFrame(direction: FrameDirection, type: string, n?: number): void;
  /**
   * Counts one decision (outcome, phase, code), its alerts, and its evaluation time. A fail-closed
   * decision's error code is NOT added to `pgward_errors_total` here: the caller counts it with countError.
   */
  countDecision(decision: Decision, phase: DecisionPhase): void;
  countError(code: ErrorCode): void;
  /** Sets `pgward_bundle_info` to the active bundle only, and counts a successful reload. */
  bundleActivated(info: BundleInfo, now?: Date): void;
  bundleReloadFailed(): void;
}

export function createMetrics(registry: Registry = new Registry()): Metrics {
  const pending: Array<() => void> = [];
  const flushAll = (): void => {
    for (const f of pending) f();
  };

  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });

  const connectionsActive = new Gauge({
    name: 'pgward_connections_active',
    help: 'Client connections currently open.',
    registers: [registry],
  });
  const connectionsTotal = new Counter({
    name: 'pgward_connections_total',
    help: 'Client connections by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect: flushAll,
  });
  const framesTotal = new Counter({
    name: 'pgward_frames_total',
    help: 'Protocol messages seen, by direction and PostgreSQL message name.',
    labelNames: ['direction', 'type'] as const,
    registers: [registry],
    collect: flushAll,
  });
  const decisionsTotal = new Counter({
    name: 'pgward_decisions_total',
    help: "Policy decisions by outcome, phase and fail-closed error code ('' for policy decisions).",
    labelNames: ['outcome', 'phase', 'code'] as const,
    registers: [registry],
    collect: flushAll,
  });
  const alertsTotal = new Counter({
    name: 'pgward_alerts_total',
    help: 'Alerts raised by policy decisions.',
    labelNames: ['rule', 'severity'] as const,
    registers: [registry],
  });
  const errorsTotal = new Counter({
    name: 'pgward_errors_total',
    help: 'Failures by stable PGWARD_ERR_* code.',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  // Observed for every judged message: the cheap kind.
  const policyEvalSeconds = new FastHistogram(
    'pgward_policy_eval_seconds',
    'Time to evaluate one policy input (the decision cache included).',
    LATENCY_BUCKETS,
    registry,
  );
  const sqlClassifySeconds = new Histogram({
    name: 'pgward_sql_classify_seconds',
    help: 'Time to parse and classify one SQL text.',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const sqlCacheTotal = new Counter({
    name: 'pgward_sql_cache_total',
    help: 'SQL classification cache lookups.',
    labelNames: ['result'] as const,
    registers: [registry],
    collect: flushAll,
  });
  const bundleInfo = new Gauge({
    name: 'pgward_bundle_info',
    help: 'The active policy bundle (value 1).',
    labelNames: ['revision', 'source', 'entrypoint'] as const,
    registers: [registry],
  });
  const bundleReloadsTotal = new Counter({
    name: 'pgward_bundle_reloads_total',
    help: 'Bundle reload attempts by result.',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const bundleLastReloadSuccess = new Gauge({
    name: 'pgward_bundle_last_reload_success_timestamp_seconds',
    help: 'Unix time of the last successful bundle load.',
    registers: [registry],
  });
  const upstreamConnectErrorsTotal = new Counter({
    name: 'pgward_upstream_connect_errors_total',
    help: 'Failed connection attempts to the upstream PostgreSQL.',
    registers: [registry],
  });
  const bytesTotal = new Counter({
    name: 'pgward_bytes_total',
    help: 'Bytes forwarded, by direction.',
    labelNames: ['direction'] as const,
    registers: [registry],
    collect: flushAll,
  });
  const auditEventsTotal = new Counter({
    name: 'pgward_audit_events_total',
    help: 'Audit events written, by kind.',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const auditSinkErrorsTotal = new Counter({
    name: 'pgward_audit_sink_errors_total',
    help: 'Audit or decision log events that could not be written.',
    registers: [registry],
  });
  const decisionLogEntriesTotal = new Counter({
    name: 'pgward_decision_log_entries_total',
    help: 'Decision log entries written.',
    registers: [registry],
  });
  const shadowDisagreementsTotal = new Counter({
    name: 'pgward_shadow_disagreements_total',
    help: 'Decisions where the shadow bundle disagreed with the active one.',
    registers: [registry],
  });
  const captureFramesTotal = new Counter({
    name: 'pgward_capture_frames_total',
    help: 'Frames written to traffic capture files.',
    registers: [registry],
    collect: flushAll,
  });

  const logRecordsTotal = new Counter({
    name: 'pgward_log_records_total',
    help: 'Statement log records and uploaded decision log entries, by log and outcome (written, dropped, failed).',
    labelNames: ['log', 'outcome'] as const,
    registers: [registry],
  });
  for (const log of ['statement_log', 'decision_log_upload'] as const)
    for (const outcome of ['written', 'dropped'] as const) logRecordsTotal.inc({ log, outcome }, 0);
  logRecordsTotal.inc({ log: 'decision_log_upload', outcome: 'failed' }, 0);

  const ready = new Gauge({
    name: READY_METRIC,
    help: 'Readiness by component (bundle, upstream): 1 ready, 0 not; refreshed by /readyz and every scrape.',
    labelNames: ['component'] as const,
    registers: [registry],
  });
  ready.set({ component: 'bundle' }, 0);
  ready.set({ component: 'upstream' }, 0);

  const bind = (flush: (n: number) => void): PendingCount => {
    const c = new PendingCount();
    pending.push(() => {
      if (c.pending > 0) {
        const n = c.pending;
        c.pending = 0;
        flush(n);
      }
    });
    return c;
  };

  const bytes = {
    client_to_upstream: bind((n) => bytesTotal.inc({ direction: 'client_to_upstream' }, n)),
    upstream_to_client: bind((n) => bytesTotal.inc({ direction: 'upstream_to_client' }, n)),
  };
  for (const direction of ['client_to_upstream', 'upstream_to_client'] as const) {
    bytesTotal.inc({ direction }, 0);
  }

  const connection = {} as Record<ConnectionOutcome, FastCounter>;
  for (const outcome of CONNECTION_OUTCOMES) {
    connectionsTotal.inc({ outcome }, 0);
    connection[outcome] = bind((n) => connectionsTotal.inc({ outcome }, n));
  }

  const sqlCache = {
    hit: bind((n) => sqlCacheTotal.inc({ result: 'hit' }, n)),
    miss: bind((n) => sqlCacheTotal.inc({ result: 'miss' }, n)),
  };
  sqlCacheTotal.inc({ result: 'hit' }, 0);
  sqlCacheTotal.inc({ result: 'miss' }, 0);

  const capturedFrames = bind((n) => captureFramesTotal.inc(n));

  // The common decision (allowed, no error) is counted without a label lookup per message.
  const allowed: Record<DecisionPhase, PendingCount> = {
    startup: bind((n) => decisionsTotal.inc({ outcome: 'allow', phase: 'startup', code: '' }, n)),
    message: bind((n) => decisionsTotal.inc({ outcome: 'allow', phase: 'message', code: '' }, n)),
  };
  captureFramesTotal.inc(0);

  const frameCounters: Record<FrameDirection, Map<string, PendingCount>> = {
    frontend: new Map(),
    backend: new Map(),
  };
  const tables: Record<FrameDirection, readonly string[]> = {
    frontend: FRONTEND_MESSAGE_TYPES,
    backend: BACKEND_MESSAGE_TYPES,
  };
  for (const direction of ['frontend', 'backend'] as const) {
    for (const type of tables[direction]) {
      frameCounters[direction].set(
        type,
        bind((n) => framesTotal.inc({ direction, type }, n)),
      );
    }
  }
  const unknownFrontend = frameCounters.frontend.get('Unknown') as PendingCount;
  const unknownBackend = frameCounters.backend.get('Unknown') as PendingCount;

  for (const code of Object.values(ErrorCodes)) errorsTotal.inc({ code }, 0);
  for (const outcome of ['allow', 'deny'] as const) {
    for (const phase of ['startup', 'message'] as const) decisionsTotal.inc({ outcome, phase, code: '' }, 0);
  }
  for (const result of ['success', 'failure'] as const) bundleReloadsTotal.inc({ result }, 0);
  for (const kind of ['deny', 'alert', 'shadow'] as const) auditEventsTotal.inc({ kind }, 0);
  for (const c of [upstreamConnectErrorsTotal, auditSinkErrorsTotal, decisionLogEntriesTotal]) c.inc(0);
  shadowDisagreementsTotal.inc(0);

  return {
    registry,
    connectionsActive,
    connectionsTotal,
    framesTotal,
    decisionsTotal,
    alertsTotal,
    errorsTotal,
    policyEvalSeconds,
    sqlClassifySeconds,
    sqlCacheTotal,
    bundleInfo,
    bundleReloadsTotal,
    bundleLastReloadSuccess,
    upstreamConnectErrorsTotal,
    bytesTotal,
    auditEventsTotal,
    auditSinkErrorsTotal,
    decisionLogEntriesTotal,
    shadowDisagreementsTotal,
    captureFramesTotal,
    logRecordsTotal,
    ready,
    bytes,
    connection,
    sqlCache,
    capturedFrames,
    countFrame(direction, type, n = 1) {
      const c = frameCounters[direction].get(type);
      if (c !== undefined) c.pending += n;
      else if (direction === 'frontend') unknownFrontend.pending += n;
      else unknownBackend.pending += n;
    },
    countDecision(decision, phase) {
      if (decision.allow && decision.error_code === null) allowed[phase].pending++;
      else
        decisionsTotal.inc({
          outcome: decision.allow ? 'allow' : 'deny',
          phase,
          code: decision.error_code ?? '',
        });
      for (const a of decision.alerts) alertsTotal.inc({ rule: a.rule, severity: a.severity });
      policyEvalSeconds.observe(decision.eval_seconds);
    },
    countError(code) {
      errorsTotal.inc({ code });
    },
    bundleActivated(info, now = new Date()) {
      bundleInfo.reset();
      bundleInfo.set({ revision: info.revision, source: info.source, entrypoint: info.entrypoint }, 1);
      bundleReloadsTotal.inc({ result: 'success' });
      bundleLastReloadSuccess.set(now.getTime() / 1000);
    },
    bundleReloadFailed() {
      bundleReloadsTotal.inc({ result: 'failure' });
    },
  };
}
