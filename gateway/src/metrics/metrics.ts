/**
 * Every pgward metric is declared here, in one place (STYLE.md). `createMetrics()` registers them on
 * a registry and returns typed handles. Hot-path counters (bytes, frames) are plain number fields
 * that are added to the prom-client metric only when the registry is scraped, so the proxy pays one
 * addition per call and never hashes label objects per frame.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ErrorCodes, type ErrorCode } from '../errors';
import type { BundleInfo, Decision } from '../policy/types';
import { gatewayRuleId, RULE_ID } from '../policy/decision';
import { FastHistogram } from './fast-histogram';

export const METRIC_PREFIX = 'pgward_';
/** Gauge `pgward_ready{component}`; the sidecar finds it in the registry by this name. */
export const READY_METRIC = 'pgward_ready';
/** Gauge `pgward_upstream_up`: the upstream accepts TCP connections (not part of readiness). */
export const UPSTREAM_UP_METRIC = 'pgward_upstream_up';
/** Counter `pgward_admin_unauthorized_total{route}`: admin requests refused with 401. */
export const ADMIN_UNAUTHORIZED_METRIC = 'pgward_admin_unauthorized_total';
/** Admin routes behind the bearer token (their 401s are counted from zero). */
export const ADMIN_TOKEN_ROUTES = ['/v1/bundle/reload', '/v1/capture/start', '/v1/capture/stop'] as const;
/** Readiness components: a bundle is active; the listener is up; shutdown has not started. */
export const READY_COMPONENTS = ['bundle', 'listener', 'accepting'] as const;

/**
 * Why a client connection ended (`pgward_connections_closed_total{reason}`). Every connection that
 * `pgward_connections_opened_total` counts ends with exactly one of these, so
 * opened - sum(closed) = pgward_connections_active. A reason outside this list is counted as `other`.
 */
export const CLOSE_REASONS = [
  'client_closed', // the client closed the socket without Terminate
  'client_terminated', // the client sent Terminate
  'client_error', // socket error on the client side
  'cancel_request', // the connection carried a CancelRequest (never a session)
  'tls_required', // tls.require and the client did not ask for TLS
  'startup_denied', // the policy denied the startup
  'login_timeout', // authentication did not finish in limits.login_timeout_ms
  'rejected_limit', // refused at accept: limits.max_clients or limits.max_unauthenticated
  'upstream_fatal', // the server sent FATAL (e.g. failed authentication, pg_terminate_backend)
  'upstream_lost', // the server connection was lost
  'shutdown', // pgward shut down (drained, or terminated at the shutdown timeout)
  'error', // pgward ended it with a protocol or internal error
  'other',
] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];
/** Kept for callers that name the accept-time refusal. */
export type ConnectionOutcome = CloseReason;

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

/** Distinct rule ids (decisions and alerts) and alert severities kept as label values; later ones count as `other`. */
export const MAX_RULE_LABELS = 100;
const MAX_SEVERITY_LABELS = 16;

/**
 * A label value from a policy-chosen string, with bounded cardinality: values that fail `valid`,
 * and new values once `max` distinct ones were seen, become `other`.
 */
export function boundedLabel(max: number, valid: (v: string) => boolean): (v: string) => string {
  const seen = new Set<string>();
  return (v) => {
    if (seen.has(v)) return v;
    if (!valid(v) || seen.size >= max) return 'other';
    seen.add(v);
    return v;
  };
}

export interface Metrics {
  readonly registry: Registry;
  readonly connectionsActive: Gauge<string>;
  readonly connectionsOpenedTotal: Counter<string>;
  readonly connectionsClosedTotal: Counter<'reason'>;
  readonly connectionsMax: Gauge<string>;
  readonly adminUnauthorizedTotal: Counter<'route'>;
  readonly upstreamUp: Gauge<string>;
  readonly configReloadsTotal: Counter<'result'>;
  readonly framesTotal: Counter<'direction' | 'type'>;
  readonly decisionsTotal: Counter<'outcome' | 'phase' | 'code' | 'rule'>;
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
  /** Counts an accepted TCP connection (refused ones included). */
  readonly connectionOpened: FastCounter;
  /** Counts the end of a connection by reason (unknown reasons as `other`). */
  connectionClosed(reason: string): void;
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

const DROPPED_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

export function createMetrics(registry: Registry = new Registry()): Metrics {
  const pending: Array<() => void> = [];
  const flushAll = (): void => {
    for (const f of pending) f();
  };

  // Node's process and runtime metrics under their standard names (process_*, nodejs_*), so stock
  // dashboards and alerts work. prom-client also exports three gauges named *_total (sums of the
  // per-type nodejs_active_handles/requests/resources gauges); a gauge must not end in _total, and
  // sum(nodejs_active_handles) gives the same number, so they are dropped.
  collectDefaultMetrics({ register: registry });
  for (const n of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(n);

  const connectionsActive = new Gauge({
    name: 'pgward_connections_active',
    help: 'Client connections currently open.',
    registers: [registry],
  });
  const connectionsOpenedTotal = new Counter({
    name: 'pgward_connections_opened_total',
    help: 'Client TCP connections accepted (including those refused at once for a limit).',
    registers: [registry],
    collect: flushAll,
  });
  const connectionsClosedTotal = new Counter({
    name: 'pgward_connections_closed_total',
    help: 'Client connections ended, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const connectionsMax = new Gauge({
    name: 'pgward_connections_max',
    help: 'Configured limit on open client connections (limits.max_clients).',
    registers: [registry],
  });
  const adminUnauthorizedTotal = new Counter({
    name: ADMIN_UNAUTHORIZED_METRIC,
    help: 'Admin API requests refused with 401 (missing or wrong bearer token), by route.',
    labelNames: ['route'] as const,
    registers: [registry],
  });
  const upstreamUp = new Gauge({
    name: UPSTREAM_UP_METRIC,
    help: 'The upstream PostgreSQL accepts TCP connections (1) or not (0); refreshed by /upstreamz and every scrape.',
    registers: [registry],
  });
  const configReloadsTotal = new Counter({
    name: 'pgward_config_reloads_total',
    help: 'Configuration reloads (SIGHUP) by result.',
    labelNames: ['result'] as const,
    registers: [registry],
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
    help: "Policy decisions by outcome, phase, fail-closed error code ('' for policy decisions) and the rule id of the first denial (a fail-closed deny: pgward.<code>; '' for allow; at most 100 ids, then 'other').",
    labelNames: ['outcome', 'phase', 'code', 'rule'] as const,
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
    help: 'Readiness by component (bundle, listener, accepting): 1 ready, 0 not; refreshed by /readyz and every scrape.',
    labelNames: ['component'] as const,
    registers: [registry],
  });
  for (const component of READY_COMPONENTS) ready.set({ component }, 0);
  upstreamUp.set(0);

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

  const connectionOpened = bind((n) => connectionsOpenedTotal.inc(n));
  connectionsOpenedTotal.inc(0);
  const closeReasons = new Set<string>(CLOSE_REASONS);
  for (const reason of CLOSE_REASONS) connectionsClosedTotal.inc({ reason }, 0);
  for (const result of ['success', 'failure'] as const) configReloadsTotal.inc({ result }, 0);
  for (const route of ADMIN_TOKEN_ROUTES) adminUnauthorizedTotal.inc({ route }, 0);

  const sqlCache = {
    hit: bind((n) => sqlCacheTotal.inc({ result: 'hit' }, n)),
    miss: bind((n) => sqlCacheTotal.inc({ result: 'miss' }, n)),
  };
  sqlCacheTotal.inc({ result: 'hit' }, 0);
  sqlCacheTotal.inc({ result: 'miss' }, 0);

  const capturedFrames = bind((n) => captureFramesTotal.inc(n));
  const ruleLabel = boundedLabel(MAX_RULE_LABELS, (v) => v === '' || (v.length <= 64 && RULE_ID.test(v)));
  const severityLabel = boundedLabel(MAX_SEVERITY_LABELS, (v) => v.length <= 32 && RULE_ID.test(v));

  // The common decision (allowed, no error) is counted without a label lookup per message.
  const allowed: Record<DecisionPhase, PendingCount> = {
    startup: bind((n) => decisionsTotal.inc({ outcome: 'allow', phase: 'startup', code: '', rule: '' }, n)),
    message: bind((n) => decisionsTotal.inc({ outcome: 'allow', phase: 'message', code: '', rule: '' }, n)),
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
    for (const phase of ['startup', 'message'] as const)
      decisionsTotal.inc({ outcome, phase, code: '', rule: '' }, 0);
  }
  for (const result of ['success', 'failure'] as const) bundleReloadsTotal.inc({ result }, 0);
  for (const kind of ['deny', 'alert', 'shadow'] as const) auditEventsTotal.inc({ kind }, 0);
  for (const c of [upstreamConnectErrorsTotal, auditSinkErrorsTotal, decisionLogEntriesTotal]) c.inc(0);
  shadowDisagreementsTotal.inc(0);

  return {
    registry,
    connectionsActive,
    connectionsOpenedTotal,
    connectionsClosedTotal,
    connectionsMax,
    adminUnauthorizedTotal,
    upstreamUp,
    configReloadsTotal,
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
    connectionOpened,
    connectionClosed(reason) {
      connectionsClosedTotal.inc({ reason: closeReasons.has(reason) ? reason : 'other' });
    },
    sqlCache,
    capturedFrames,
    countFrame(direction, type, n = 1) {
      const c = frameCounters[direction].get(type);
      if (c !== undefined) c.pending += n;
      else if (direction === 'frontend') unknownFrontend.pending += n;
      else unknownBackend.pending += n;
    },
    countDecision(decision, phase) {
      // A comparison, not allowed[phase]: a keyed lookup by a string is megamorphic here.
      if (decision.allow && decision.error_code === null)
        (phase === 'message' ? allowed.message : allowed.startup).pending++;
      else
        decisionsTotal.inc({
          outcome: decision.allow ? 'allow' : 'deny',
          phase,
          code: decision.error_code ?? '',
          rule: ruleLabel(
            decision.denials[0]?.rule ?? (decision.error_code ? gatewayRuleId(decision.error_code) : ''),
          ),
        });
      for (const a of decision.alerts)
        alertsTotal.inc({ rule: ruleLabel(a.rule), severity: severityLabel(a.severity) });
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
