/**
 * Composition root: the only place that listens and wires the parts together.
 */
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import { X509Certificate, randomUUID } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { parseHostPort, type Config } from './config';
import { ErrorCodes } from './errors';
import { createMetrics, type Metrics } from './metrics/metrics';
import { buildSidecar, sidecarServerOptions } from './sidecar/app';
import {
  auditEventFrom,
  createAuditLog,
  createDecisionLog,
  createDecisionLogUploader,
  createStatementLog,
  type AuditLog,
  type DecisionLog,
  type DecisionLogUploader,
  type StatementLog,
} from './audit';
import { ActiveEngine } from './policy/opa-engine';
import { BundleManager, type BundleManagerOptions } from './policy/bundle-manager';
import { gatewayDenial } from './policy/decision';
import { initSqlParser, sessionClassifier } from './sql';
import { CancelRegistry } from './session/cancel-registry';
import { Session } from './session/session';
import type { DecisionEvent, SessionDeps, SessionObserver } from './session/types';
import type { Refusal } from './session/actions';
import { backendTypeName, frontendTypeName } from './protocol';
import { encodeFatal } from './enforcement/deny';
import { CaptureSink } from './capture/capture-sink';
import { attachCapture, type CaptureControls } from './capture/attach';
import { attachShadow } from './replay/shadow';
import { buildEngineFromSource } from './policy/opa-engine';
import { SessionDrain } from './lifecycle/drain';
import { planConfigReload, type ConfigReloadResult } from './lifecycle/config-reload';
import { CancelKeyLayout } from './cluster/cancel-key';
import { shareOf } from './cluster/messages';
import { forwardToPeers, peerSecret, startPeerServer } from './cluster/peer-channel';
import { configForWorker } from './cluster/worker-files';
import { GatedEngine } from './cluster/gated-engine';
import { answerMetricsRequests, type WorkerLink } from './cluster/worker-link';
import { listenNative, nativeSocketsAvailable, type BunSocket } from './session/bun-socket';
import { nativeUpstream } from './session/upstream';

export const VERSION = '0.1.0';

export interface Gateway {
  /** Actual addresses (useful when configured with port 0). */
  listen: { host: string; port: number };
  admin: { host: string; port: number } | null;
  metrics: Metrics;
  bundles: BundleManager;
  sessions: ReadonlySet<Session>;
  /**
   * SIGTERM: not ready at once, keep accepting for limits.shutdown_delay_ms, stop accepting, drain
   * sessions up to limits.shutdown_timeout_ms, cancel what still runs and wait (at most
   * limits.shutdown_cancel_wait_ms) for the server to confirm, then close everything.
   */
  shutdown(): Promise<void>;
  /** SIGHUP: applies the keys that can change at run time; names those that need a restart. */
  reloadConfig(next: Config): Promise<ConfigReloadResult>;
}

/**
 * pgward's log: JSON lines on stdout, written through `process.stdout` itself, the writer the
 * stdout sinks (audit, decision log, statement log) use. pino's default is a writer of its own on
 * fd 1; beside process.stdout, two writers with their own buffers spliced one record into another
 * whenever the reader was slow and the pipe full (a log collector then drops both lines).
 */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { app: 'pgward' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['password', '*.password', 'token', '*.token'], censor: '[REDACTED]' },
    },
    process.stdout,
  );
}

/**
 * Starts the gateway in this process: the whole instance, or (with `link`) one worker of
 * `pgward serve --workers N` (cluster/primary.ts), which serves its share of the limits, writes its
 * own files, and runs the admin sidecar only as worker 0.
 */
export async function startGateway(
  configIn: Config,
  logger: Logger,
  link: WorkerLink | null = null,
): Promise<Gateway> {
  await initSqlParser();
  const config = link ? configForWorker(configIn, link.index) : configIn;
  const metrics = createMetrics();
  const bytesUp = metrics.bytes.client_to_upstream;
  const bytesDown = metrics.bytes.upstream_to_client;
  // The primary asks every worker for its registry and sums them (prom-client's AggregatorRegistry).
  if (link) answerMetricsRequests(metrics.registry);
  const share = (total: number): number => (link ? shareOf(total, link.workers, link.index) : total);
  const instanceId = randomUUID();
  metrics.connectionsMax.set(share(config.limits.max_clients));
  let current = config;

  // One redaction object shared by the audit, decision and statement logs (they read it per
  // record): a SIGHUP that changes audit.redact changes all three at once.
  const redact = { ...config.audit.redact };
  const openAuditLog = (c: Config): AuditLog =>
    createAuditLog(
      {
        sink: c.audit.sink,
        file: { ...c.audit.file },
        redact,
        fail_closed: c.audit.fail_closed,
        max_frame_bytes: c.audit.max_frame_bytes,
      },
      { metrics, logger },
    );
  // Sessions hold this one object; a SIGHUP that changes the audit section swaps what is behind it.
  let auditLog = openAuditLog(config);
  const audit: AuditLog = {
    record: (e) => auditLog.record(e),
    healthy: () => auditLog.healthy(),
    close: () => auditLog.close(),
  };
  // ---- audit: decision log upload (OPA services/decision_logs) and the statement log ----
  const upload = config.decision_log.decision_logs;
  const service = upload ? config.decision_log.services[upload.service] : undefined;
  const uploader: DecisionLogUploader | undefined =
    config.decision_log.enabled && upload && service
      ? createDecisionLogUploader(
          {
            url: service.url,
            headers: { ...service.headers },
            credentials: {
              bearer: service.credentials.bearer ? { ...service.credentials.bearer } : undefined,
            },
            response_header_timeout_seconds: service.response_header_timeout_seconds,
          },
          { service: upload.service, resource: upload.resource, reporting: { ...upload.reporting } },
          {
            logger,
            onUploaded: (n) =>
              metrics.logRecordsTotal.inc({ log: 'decision_log_upload', outcome: 'written' }, n),
            onDropped: (n) =>
              metrics.logRecordsTotal.inc({ log: 'decision_log_upload', outcome: 'dropped' }, n),
            onFailed: () => {
              metrics.logRecordsTotal.inc({ log: 'decision_log_upload', outcome: 'failed' });
              metrics.countError(ErrorCodes.AUDIT_SINK);
            },
          },
        )
      : undefined;
  const decisionLog: DecisionLog | null = config.decision_log.enabled
    ? createDecisionLog(
        {
          enabled: true,
          sample_rate: config.decision_log.sample_rate,
          sink: config.decision_log.sink,
          file: { ...config.decision_log.file },
        },
        { metrics, logger, redact, instanceId, version: VERSION, uploader },
      )
    : null;
  const statementLog: StatementLog = createStatementLog(
    {
      enabled: config.statement_log.enabled,
      sink: config.statement_log.sink,
      file: { ...config.statement_log.file },
      max_buffered_bytes: config.statement_log.max_buffered_bytes,
      redact,
    },
    {
      metrics,
      logger,
      onWritten: (n) => metrics.logRecordsTotal.inc({ log: 'statement_log', outcome: 'written' }, n),
      onDropped: (n) => metrics.logRecordsTotal.inc({ log: 'statement_log', outcome: 'dropped' }, n),
    },
  );
  // ---- end audit ----

  // Two levels: the exact text, then its shape (sql/shape-cache.ts).
  const classify = sessionClassifier(config.sql.cache_entries, {
    hit: () => metrics.sqlCache.hit.inc(),
    miss: (seconds) => {
      metrics.sqlCache.miss.inc();
      metrics.sqlClassifySeconds.observe(seconds);
    },
  });

  const frameCounts = { frontend: new Float64Array(256), backend: new Float64Array(256) };
  const flushFrameCounts = (): void => {
    for (const direction of ['frontend', 'backend'] as const) {
      const arr = frameCounts[direction];
      for (let t = 0; t < 256; t++) {
        const n = arr[t]!;
        if (n === 0) continue;
        arr[t] = 0;
        const name =
          t === 0 ? 'StartupMessage' : direction === 'frontend' ? frontendTypeName(t) : backendTypeName(t);
        metrics.countFrame(direction, name ?? 'Unknown', n);
      }
    }
  };
  const frameTimer = setInterval(flushFrameCounts, 1000);
  frameTimer.unref();

  // With workers a new bundle goes live in all of them at the primary's commit (gated-engine.ts).
  const engine = link ? new GatedEngine((revision) => link.reportPrepared(revision)) : new ActiveEngine();
  const bundles = new BundleManager(engine, bundleOptions(config), {
    logger,
    onActivated: (info) => {
      metrics.bundleActivated(info);
      link?.reportRevision(engine.bundle()?.revision ?? null);
    },
    onFailed: (code) => {
      metrics.bundleReloadFailed();
      metrics.countError(code as never);
    },
  });

  const observer: SessionObserver = {
    onDecision(ev: DecisionEvent): boolean {
      const d = ev.decision;
      metrics.countDecision(d, ev.input.phase);
      if (d.error_code) metrics.countError(d.error_code);
      decisionLog?.log(ev.input, d, config.policy.entrypoint, ev.connection.id);
      if (d.allow && d.alerts.length === 0) return true;
      return audit.record(auditEventFrom(d.allow ? 'alert' : 'deny', ev.input, d, ev.frame, ev));
    },
    onError: (code) => metrics.countError(code),
    onServerStateDiverged(ev) {
      // A tripwire: the audit record names the decision before the server's report, now a denial.
      const p = ev.preceding;
      const d = {
        denials: [gatewayDenial(ev.code, ev.reason)],
        reasons: [ev.reason],
        alerts: [],
        error_code: ev.code,
      };
      audit.record(
        p
          ? auditEventFrom('deny', p.input, { ...p.decision, ...d, allow: false }, p.frame, p)
          : {
              kind: 'deny',
              decision_id: '',
              revision: engine.bundle()?.revision ?? '',
              connection: ev.connection,
              message_type: 'ParameterStatus',
              statements: [],
              frame: null,
              ...d,
            },
      );
    },
    onConnectionOpened: () => metrics.connectionsActive.inc(),
    onConnectionClosed: (outcome, conn) => {
      metrics.connectionsActive.dec();
      metrics.connectionClosed(outcome);
      statementLog.sessionEnded(conn.id, outcome);
    },
    onAuthenticated: (conn) => statementLog.sessionStarted(conn),
    // Per write: a comparison, not metrics.bytes[direction] (a megamorphic keyed lookup).
    onBytes: (direction, n) => (direction === 'client_to_upstream' ? bytesUp : bytesDown).inc(n),
    onUpstreamConnectError: () => metrics.upstreamConnectErrorsTotal.inc(),
  };

  // ---- policy CI (issue 5): traffic capture and shadow evaluation, hooked into the observer ----
  const captureSink = new CaptureSink(
    {
      dir: config.capture.dir,
      users: config.capture.users,
      databases: config.capture.databases,
      applications: config.capture.applications,
      max_file_bytes: config.capture.max_file_bytes,
      max_file_age_s: config.capture.max_file_age_s,
      redact: { ...config.capture.redact },
      maxSqlBytesInInput: config.sql.max_sql_bytes_in_input,
      pgwardVersion: VERSION,
    },
    { metrics, logger },
  );
  const capture: CaptureControls = attachCapture(observer, captureSink);
  if (config.capture.enabled) await capture.start();
  if (config.policy.shadow_bundle !== undefined) {
    const shadowEngine = await buildEngineFromSource(config.policy.shadow_bundle, {
      entrypoint: config.policy.entrypoint,
      memoryMaxPages: config.policy.wasm_memory_max_pages,
    });
    attachShadow(observer, {
      engine: shadowEngine,
      audit,
      onDisagreement: () => metrics.shadowDisagreementsTotal.inc(),
    });
    logger.info(
      { shadow: config.policy.shadow_bundle, revision: shadowEngine.bundle()?.revision ?? null },
      'shadow bundle loaded',
    );
  }
  // ---- end policy CI ----

  const upstreamAddr = parseHostPort(config.upstream.address);
  const certFile = config.tls.cert_file;
  const clientTlsContext =
    certFile && config.tls.key_file
      ? tls.createSecureContext({
          cert: fs.readFileSync(certFile),
          key: fs.readFileSync(config.tls.key_file),
          ...(config.tls.ca_file ? { ca: fs.readFileSync(config.tls.ca_file) } : {}),
          minVersion: config.tls.min_version as tls.SecureVersion,
        })
      : null;

  const sessions = new Set<Session>();
  const drain = new SessionDrain(
    sessions,
    {
      delayMs: config.limits.shutdown_delay_ms,
      timeoutMs: config.limits.shutdown_timeout_ms,
      cancelWaitMs: config.limits.shutdown_cancel_wait_ms,
    },
    logger,
  );
  const limits = { maxClients: share(config.limits.max_clients) };
  const unauthenticated = { count: 0, max: share(config.limits.max_unauthenticated) };
  const cancel = createCancelRegistry(config, link, logger);
  const broadcast = config.cluster.peer_bits === 0 && config.cluster.peers.length > 0;
  const upstreamOptions = {
    host: upstreamAddr.host,
    port: upstreamAddr.port,
    connectTimeoutMs: config.upstream.connect_timeout_ms,
    tls: { ...config.upstream.tls },
    native: nativeSocketsAvailable(),
  };
  const deps: SessionDeps = {
    logger,
    engine,
    classify,
    cancel,
    upstream: upstreamOptions,
    clientTls: {
      context: clientTlsContext,
      require: config.tls.require,
      requestCert: !!config.tls.ca_file,
      certDer: certFile ? new X509Certificate(fs.readFileSync(certFile)).raw : null,
    },
    limits: {
      maxMessageBytes: config.limits.max_message_bytes,
      loginTimeoutMs: config.limits.login_timeout_ms,
      maxSqlBytesInInput: config.sql.max_sql_bytes_in_input,
    },
    observer,
    auditFailClosed: config.audit.fail_closed,
    onClose: (s) => {
      sessions.delete(s as Session);
      drain.closed();
    },
    frameCounts,
    unauthenticated,
    // Statement records are started and completed by the session core (session/statement-tracker.ts).
    statementLog: statementLog.enabled ? statementLog : undefined,
  };

  // A client over a limit is refused as PostgreSQL refuses it (CAC_TOOMANY): after its SSLRequest
  // or GSSENCRequest is answered, in the encryption it asked for. Such sessions are bounded
  // (max_clients of them); beyond that the refusal is written at once.
  let refusing = 0;
  const refusingDeps: SessionDeps = { ...deps, onClose: () => refusing-- };
  const accept = (socket: net.Socket | BunSocket): void => {
    metrics.connectionOpened.inc();
    const refusal: Refusal | null =
      sessions.size >= limits.maxClients
        ? 'max_clients'
        : unauthenticated.count >= unauthenticated.max
          ? 'max_unauthenticated'
          : null;
    socket.on('error', () => undefined);
    if (refusal === null) {
      sessions.add(new Session(socket, deps));
      return;
    }
    if (refusing < limits.maxClients) {
      refusing++;
      new Session(socket, refusingDeps, refusal);
      return;
    }
    refuse(
      socket,
      'rejected_limit',
      refusal === 'max_clients' ? ErrorCodes.LIMIT_CLIENTS : ErrorCodes.LIMIT_UNAUTHENTICATED,
      '53300',
      'sorry, too many clients already',
    );
  };

  function refuse(
    socket: net.Socket | BunSocket,
    outcome: string,
    code: (typeof ErrorCodes)[keyof typeof ErrorCodes],
    sqlstate: string,
    message: string,
  ): void {
    metrics.connectionClosed(outcome);
    metrics.countError(code);
    logger.warn({ code, client: socket.remoteAddress }, message);
    socket.on('error', () => undefined);
    // The client is still in its startup phase: it reads an ErrorResponse just the same.
    socket.end(encodeFatal(sqlstate, message));
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  await bundles.start();
  link?.reportRevision(bundles.status().info?.revision ?? null);
  link?.attach({
    deliver: (pid, key, fromPeer) => {
      const target = cancel.lookupLocal(pid, key);
      if (target) void target.cancelUpstream();
      // Peers without peer bits: a key another worker could not place may be another replica's.
      else if (!fromPeer && broadcast) void link?.askPeers(pid, key);
    },
    reload: () => bundles.reload(),
    capture: (action) => capture[action](),
    commit: (revision) => {
      if (!(engine instanceof GatedEngine) || !engine.commit(revision)) return;
      logger.info({ revision }, 'policy bundle live in every worker');
      link?.reportRevision(revision);
    },
  });
  // One process with peers: forwards from other replicas arrive here (with workers, at the primary).
  const peerSecretBytes = peerSecret(config.cluster, (f) => fs.readFileSync(f, 'utf8'));
  const peerServer =
    link === null && config.cluster.peer_listen !== undefined && peerSecretBytes !== null
      ? await startPeerServer({
          listen: config.cluster.peer_listen,
          secret: peerSecretBytes,
          timeoutMs: config.cluster.peer_timeout_ms,
          logger,
          deliver: (f) => {
            const route = cancel.layout.route(f.secretKey);
            if (route !== null && cancel.layout.isSelf(route))
              void cancel.lookupLocal(f.processId, f.secretKey)?.cancelUpstream();
          },
        })
      : null;

  const listenAddr = parseHostPort(config.listen);
  // Under Bun, a plain-TCP listener of one process uses Bun's own sockets (session/bun-socket.ts);
  // client TLS and cluster workers (whose listener the primary shares) keep node:net.
  const native = nativeSocketsAvailable() && clientTlsContext === null && link === null;
  const server = native
    ? listenNative(listenAddr.host, listenAddr.port, accept)
    : await listenNode(listenAddr.host, listenAddr.port, accept, logger);
  const la = server.address();

  let sidecar: FastifyInstance | null = null;
  let adminAddr: { host: string; port: number } | null = null;
  if (config.admin.enabled && (link === null || link.index === 0)) {
    const token =
      config.admin.token ??
      (config.admin.token_file ? fs.readFileSync(config.admin.token_file, 'utf8').trim() : null);
    const tlsOpts =
      config.admin.tls.cert_file && config.admin.tls.key_file
        ? { cert_file: config.admin.tls.cert_file, key_file: config.admin.tls.key_file }
        : undefined;
    sidecar = buildSidecar({
      engine,
      bundleStatus: () => bundles.status(),
      reload: link ? () => link.reloadAll() : () => bundles.reload(),
      serving: () => ({ listener: server.listening, accepting: drain.accepting }),
      ...(link
        ? {
            metricsText: () => link.metrics(),
            workersReady: () => link.allRun(engine.bundle()?.revision ?? null),
          }
        : {}),
      upstreamReady: () => probeUpstream(upstreamAddr.host, upstreamAddr.port, 1000),
      registry: metrics.registry,
      token,
      logger,
      server: sidecarServerOptions(tlsOpts),
      // With workers, capture goes on and off in every one (each writes its own directory).
      capture: link
        ? { start: () => link.captureAll('start'), stop: () => link.captureAll('stop') }
        : capture,
    });
    const aa = parseHostPort(config.admin.listen);
    await sidecar.listen({ host: aa.host, port: aa.port });
    const addr = sidecar.server.address() as net.AddressInfo;
    adminAddr = { host: addr.address, port: addr.port };
  }

  logger.info(
    {
      listen: `${la.address}:${la.port}`,
      admin: adminAddr ? `${adminAddr.host}:${adminAddr.port}` : null,
      worker: link ? link.index : null,
      pid: process.pid,
      peer_listen: peerServer ? peerServer.port : null,
      upstream: config.upstream.address,
      bundle: bundles.status().info?.revision ?? null,
      version: VERSION,
      // Which sockets carry sessions: Bun's own (session/bun-socket.ts) or node:net/node:tls.
      sockets: {
        clients: native ? 'bun' : 'node',
        upstream: nativeUpstream(upstreamOptions) ? 'bun' : 'node',
      },
    },
    link ? 'pgward worker listening' : 'pgward listening',
  );
  link?.reportListening(
    `${la.address}:${la.port}`,
    adminAddr ? `${adminAddr.host}:${adminAddr.port}` : null,
    bundles.status().info?.revision ?? null,
  );

  let shuttingDown: Promise<void> | null = null;
  const shutdown = (): Promise<void> => {
    if (shuttingDown) return shuttingDown;
    shuttingDown = (async () => {
      const result = await drain.run(() => server.close());
      logger.info(result, 'shutdown: sessions closed');
      bundles.stop();
      clearInterval(frameTimer);
      flushFrameCounts();
      if (sidecar) await sidecar.close();
      peerServer?.close();
      await captureSink.close();
      await audit.close();
      if (decisionLog) await decisionLog.close();
      await statementLog.close();
      logger.info('shutdown complete');
    })();
    return shuttingDown;
  };

  let reloadingConfig: Promise<ConfigReloadResult> = Promise.resolve({
    applied: [],
    restart_required: [],
  });
  const reloadConfig = (nextIn: Config): Promise<ConfigReloadResult> => {
    const next = link ? configForWorker(nextIn, link.index) : nextIn;
    // One reload at a time; a failed one does not block the next.
    reloadingConfig = reloadingConfig
      .catch(() => undefined)
      .then(async () => {
        const plan = planConfigReload(current, next);
        const policyChanged = plan.applied.some((k) => k.startsWith('policy.'));
        // First what can fail (a bad signing key or token setting): nothing is applied then.
        if (policyChanged) bundles.retarget(bundleOptions(plan.merged));
        if (plan.applied.includes('log.level')) logger.level = next.log.level;
        if (plan.applied.some((k) => k.startsWith('audit.'))) {
          // The new sink opens first; the old one is closed once nothing writes to it any more.
          const previous = auditLog;
          auditLog = openAuditLog(next);
          Object.assign(redact, next.audit.redact);
          deps.auditFailClosed = next.audit.fail_closed;
          void previous.close();
        }
        limits.maxClients = share(next.limits.max_clients);
        metrics.connectionsMax.set(limits.maxClients);
        unauthenticated.max = share(next.limits.max_unauthenticated);
        deps.limits.loginTimeoutMs = next.limits.login_timeout_ms;
        deps.limits.maxMessageBytes = next.limits.max_message_bytes;
        drain.retime({
          delayMs: next.limits.shutdown_delay_ms,
          timeoutMs: next.limits.shutdown_timeout_ms,
          cancelWaitMs: next.limits.shutdown_cancel_wait_ms,
        });
        if (policyChanged) await bundles.start();
        // What needs a restart keeps its old value, so `current` mixes both until then.
        current = plan.merged;
        metrics.configReloadsTotal.inc({ result: 'success' });
        logger.info(
          { applied: plan.applied, restart_required: plan.restart_required },
          plan.restart_required.length > 0
            ? 'config reloaded; some changed keys need a restart'
            : 'config reloaded',
        );
        return { applied: plan.applied, restart_required: plan.restart_required };
      });
    return reloadingConfig;
  };

  return {
    listen: { host: la.address, port: la.port },
    admin: adminAddr,
    metrics,
    bundles,
    sessions,
    shutdown,
    reloadConfig,
  };
}

/**
 * Cancel keys name this worker and replica (cluster/cancel-key.ts). A key naming another worker goes
 * to the primary; one naming another replica goes to the peers (from the primary when there are
 * workers). Either way the process that issued the key compares it.
 */
function createCancelRegistry(config: Config, link: WorkerLink | null, logger: Logger): CancelRegistry {
  const c = config.cluster;
  const layout = new CancelKeyLayout({
    peerBits: c.peer_bits,
    peerId: c.peer_id,
    workers: link ? link.workers : 1,
    workerIndex: link ? link.index : 0,
  });
  // Without peer bits a key names no replica: one that no session here holds goes to every peer.
  const broadcast = c.peer_bits === 0 && c.peers.length > 0;
  if (link)
    return new CancelRegistry(
      layout,
      (route, pid, key) => link.forwardCancel(route, pid, key),
      broadcast ? (_route, pid, key) => link.askPeers(pid, key) : null,
    );
  const secret = peerSecret(c, (f) => fs.readFileSync(f, 'utf8'));
  if (secret === null || c.peers.length === 0) return new CancelRegistry(layout);
  const peers = { peers: c.peers, secret, timeoutMs: c.peer_timeout_ms, logger };
  const toPeers = (_route: unknown, processId: number, secretKey: Buffer): Promise<boolean> =>
    forwardToPeers(peers, { processId, secretKey });
  return new CancelRegistry(layout, toPeers, broadcast ? toPeers : null);
}

/** The bundle manager's options from the policy section (also on a SIGHUP reload). */
function bundleOptions(config: Config): BundleManagerOptions {
  return {
    source: config.policy.bundle,
    entrypoint: config.policy.entrypoint,
    memoryMaxPages: config.policy.wasm_memory_max_pages,
    watch: config.policy.watch,
    watchDebounceMs: config.policy.watch_debounce_ms,
    // Bundle server polling, bearer auth and signature verification (bundle-manager.ts).
    pollMinDelayMs: config.policy.poll_min_delay_s * 1000,
    pollMaxDelayMs: config.policy.poll_max_delay_s * 1000,
    bearerToken: config.policy.bearer_token,
    bearerTokenFile: config.policy.bearer_token_file,
    signing: config.policy.signing.verify
      ? {
          algorithm: config.policy.signing.algorithm,
          key: config.policy.signing.key,
          keyFile: config.policy.signing.key_file,
          keyId: config.policy.signing.key_id,
          scope: config.policy.signing.scope,
        }
      : undefined,
  };
}

/** Readiness: the upstream accepts TCP connections. */
function probeUpstream(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** The client listener on node:net (a cluster worker's is shared by the primary). */
async function listenNode(
  host: string,
  port: number,
  accept: (s: net.Socket) => void,
  logger: Logger,
): Promise<{ readonly listening: boolean; address(): net.AddressInfo; close(): void }> {
  const server = net.createServer({ noDelay: true, pauseOnConnect: false }, accept);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger.error({ err: err.message }, 'listener error'));
  return {
    get listening() {
      return server.listening;
    },
    address: () => server.address() as net.AddressInfo,
    close: () => server.close(),
  };
}
