/**
 * The admin sidecar: health, readiness, Prometheus metrics and the policy bundle endpoints. It is
 * built here and never listens by itself; the composition root calls `listen()`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as https from 'node:https';
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ErrorCodes } from '../errors';
import { ADMIN_UNAUTHORIZED_METRIC, READY_METRIC, UPSTREAM_UP_METRIC } from '../metrics/metrics';
import type { BundleInfo, PolicyEngine } from '../policy/types';

export type ReloadResult = { ok: true; revision: string } | { ok: false; error: string; code: string };

export interface BundleStatus {
  info: BundleInfo | null;
  last_reload_error: string | null;
  last_reload_at: string | null;
}

export interface SidecarDeps {
  engine: PolicyEngine;
  bundleStatus(): BundleStatus;
  reload(): Promise<ReloadResult>;
  /**
   * pgward's own ability to serve, besides the bundle: the client listener is up, and shutdown has
   * not started (from SIGTERM on, /readyz answers 503 while the listener still accepts for a while).
   * The gateway always passes it; absent (a sidecar built on its own), both count as true.
   */
  serving?: (() => { listener: boolean; accepting: boolean }) | undefined;
  /** The upstream accepts TCP connections: reported by /upstreamz and pgward_upstream_up, not /readyz. */
  upstreamReady(): Promise<boolean>;
  registry: Registry;
  /**
   * With workers (cluster/primary.ts): the Prometheus text of all of them, summed, in place of
   * `registry`'s own (the gauges this sidecar sets live in `registry` and are part of the sum).
   */
  metricsText?: (() => Promise<string>) | undefined;
  /** With workers: every worker runs the active revision; /readyz answers 503 ('workers') until then. */
  workersReady?: (() => boolean) | undefined;
  /** When set, POST /v1/bundle/reload requires `Authorization: Bearer <token>`. */
  token?: string | null | undefined;
  logger?: Logger | undefined;
  /** From `sidecarServerOptions()`; plain HTTP when absent. */
  server?: SidecarServerOptions | undefined;
  /** How long an upstream probe result is reused (default 1000 ms). */
  upstreamCacheMs?: number;
  /** A probe that has not answered by then counts as not ready (default 2000 ms). */
  upstreamTimeoutMs?: number;
  /** Traffic capture switch for POST /v1/capture/start|stop (same token rule as reload); absent: 404. */
  capture?: { start(): Promise<unknown>; stop(): Promise<unknown> } | undefined;
}

export interface SidecarServerOptions {
  https?: https.ServerOptions;
}

/** Fastify server options for the admin listener: HTTPS when both a certificate and a key are configured. */
export function sidecarServerOptions(tls?: {
  cert_file?: string | undefined;
  key_file?: string | undefined;
}): SidecarServerOptions {
  const cert = tls?.cert_file;
  const key = tls?.key_file;
  if (!cert && !key) return {};
  if (!cert || !key) throw new Error('admin.tls needs both cert_file and key_file');
  return { https: { cert: readFileSync(cert), key: readFileSync(key) } };
}

/** Reload failures: a bundle that is bad (422) versus one that could not be fetched (502). */
const BAD_BUNDLE_CODES = new Set<string>([
  ErrorCodes.BUNDLE_LOAD,
  ErrorCodes.BUNDLE_SMOKE,
  ErrorCodes.BUNDLE_SIGNATURE,
]);
const FETCH_CODES = new Set<string>([ErrorCodes.BUNDLE_FETCH]);

export function reloadFailureStatus(code: string): number {
  if (BAD_BUNDLE_CODES.has(code)) return 422;
  if (FETCH_CODES.has(code)) return 502;
  return 500;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Compares the bearer token in constant time over SHA-256 digests, so neither content nor length leaks. */
function makeTokenCheck(token: string | null | undefined): (header: string | undefined) => boolean {
  if (token === null || token === undefined) return () => true;
  if (token === '') throw new Error('admin token must not be empty');
  const expected = sha256(token);
  return (header) => {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
    const presented = sha256(m?.[1] ?? '');
    return timingSafeEqual(presented, expected) && m !== null;
  };
}

function createUpstreamProbe(deps: SidecarDeps): () => Promise<boolean> {
  const cacheMs = deps.upstreamCacheMs ?? 1000;
  const timeoutMs = deps.upstreamTimeoutMs ?? 2000;
  let cached: { at: number; ok: boolean } | null = null;
  let inflight: Promise<boolean> | null = null;
  const probe = async (): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    try {
      return (await Promise.race([deps.upstreamReady().then((v) => v === true), timeout])) === true;
    } catch (err) {
      deps.logger?.warn({ err: (err as Error).message }, 'upstream readiness probe failed');
      return false;
    } finally {
      clearTimeout(timer);
    }
  };
  return () => {
    const now = Date.now();
    if (cached !== null && now - cached.at < cacheMs) return Promise.resolve(cached.ok);
    inflight ??= probe().then((ok) => {
      cached = { at: Date.now(), ok };
      inflight = null;
      return ok;
    });
    return inflight;
  };
}

export function buildSidecar(deps: SidecarDeps): FastifyInstance {
  const checkToken = makeTokenCheck(deps.token);
  const upstream = createUpstreamProbe(deps);
  const base = { ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }) };
  // The https variant has a different generic Server type; the routes use nothing that differs.
  const app = (deps.server?.https
    ? fastify({ ...base, https: deps.server.https })
    : fastify(base)) as unknown as FastifyInstance;

  app.get('/healthz', async () => ({ status: 'ok' }));

  // pgward_ready{component} and pgward_upstream_up (declared in metrics.ts) follow every evaluation
  // and are refreshed before each scrape, so alerting does not depend on anyone polling.
  const found = deps.registry.getSingleMetric(READY_METRIC);
  const readyGauge = found instanceof Gauge ? (found as Gauge<'component'>) : null;
  const foundUp = deps.registry.getSingleMetric(UPSTREAM_UP_METRIC);
  const upGauge = foundUp instanceof Gauge ? (foundUp as Gauge) : null;
  const foundUnauth = deps.registry.getSingleMetric(ADMIN_UNAUTHORIZED_METRIC);
  const unauthorized = foundUnauth instanceof Counter ? (foundUnauth as Counter<'route'>) : null;

  // Readiness is pgward's own ability to serve. The upstream is deliberately not part of it: when
  // PostgreSQL is briefly unreachable every replica would leave the Service at once, and clients
  // would get "connection refused" instead of the server's own error through pgward.
  const readiness = (): {
    bundle: BundleInfo | null;
    serving: { listener: boolean; accepting: boolean };
    missing: string[];
  } => {
    const bundle = deps.engine.bundle();
    const serving = deps.serving?.() ?? { listener: true, accepting: true };
    readyGauge?.set({ component: 'bundle' }, bundle !== null ? 1 : 0);
    readyGauge?.set({ component: 'listener' }, serving.listener ? 1 : 0);
    readyGauge?.set({ component: 'accepting' }, serving.accepting ? 1 : 0);
    const missing: string[] = [];
    if (bundle === null) missing.push('bundle');
    if (!serving.listener) missing.push('listener');
    if (!serving.accepting) missing.push('accepting');
    if (deps.workersReady && !deps.workersReady()) missing.push('workers');
    return { bundle, serving, missing };
  };
  const upstreamHealth = async (): Promise<boolean> => {
    const ok = await upstream();
    upGauge?.set(ok ? 1 : 0);
    return ok;
  };

  app.get('/readyz', async (_req, reply) => {
    const { bundle, serving, missing } = readiness();
    if (bundle !== null && missing.length === 0) {
      return { status: 'ready', revision: bundle.revision };
    }
    return reply
      .code(503)
      .header('retry-after', '1')
      .send({ status: 'not_ready', bundle: bundle !== null, ...serving, missing });
  });

  app.get('/upstreamz', async (_req, reply) => {
    if (await upstreamHealth()) return { status: 'up' };
    return reply.code(503).header('retry-after', '1').send({ status: 'down' });
  });

  const refuse = (req: FastifyRequest, reply: FastifyReply, what: string): FastifyReply => {
    unauthorized?.inc({ route: req.routeOptions.url ?? 'unknown' });
    req.log.warn({ code: ErrorCodes.ADMIN_UNAUTHORIZED }, `${what} refused: bad or missing token`);
    return reply
      .code(401)
      .header('www-authenticate', 'Bearer')
      .send({ error: 'unauthorized', code: ErrorCodes.ADMIN_UNAUTHORIZED });
  };

  app.get('/metrics', async (_req, reply) => {
    readiness();
    if (upGauge) await upstreamHealth();
    const text = deps.metricsText ? await deps.metricsText() : await deps.registry.metrics();
    return reply.header('content-type', deps.registry.contentType).send(text);
  });

  app.get('/v1/bundle', async () => {
    const s = deps.bundleStatus();
    return {
      active: s.info !== null,
      revision: s.info?.revision ?? null,
      entrypoint: s.info?.entrypoint ?? null,
      source: s.info?.source ?? null,
      loaded_at: s.info?.loaded_at ?? null,
      opa_version: s.info?.opa_version ?? null,
      last_reload_error: s.last_reload_error,
      last_reload_at: s.last_reload_at,
    };
  });

  let reloading: Promise<ReloadResult> | null = null;
  app.post('/v1/bundle/reload', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!checkToken(req.headers.authorization)) return refuse(req, reply, 'bundle reload');
    // Concurrent reload requests share one attempt.
    reloading ??= deps.reload().finally(() => {
      reloading = null;
    });
    let result: ReloadResult;
    try {
      result = await reloading;
    } catch (err) {
      req.log.error({ err: (err as Error).message, code: ErrorCodes.BUNDLE_LOAD }, 'bundle reload threw');
      return reply.code(500).send({ error: 'bundle reload failed', code: ErrorCodes.BUNDLE_LOAD });
    }
    if (result.ok) return { revision: result.revision };
    return reply.code(reloadFailureStatus(result.code)).send({ error: result.error, code: result.code });
  });

  // Traffic capture on/off (policy CI): the same bearer token rule as the reload.
  for (const action of ['start', 'stop'] as const) {
    app.post(`/v1/capture/${action}`, async (req: FastifyRequest, reply: FastifyReply) => {
      if (!checkToken(req.headers.authorization)) return refuse(req, reply, `capture ${action}`);
      if (!deps.capture) return reply.code(404).send({ error: 'capture is not available' });
      try {
        return await deps.capture[action]();
      } catch (err) {
        req.log.error(
          { err: (err as Error).message, code: ErrorCodes.CAPTURE_SINK },
          `capture ${action} failed`,
        );
        return reply.code(500).send({ error: `capture ${action} failed`, code: ErrorCodes.CAPTURE_SINK });
      }
    });
  }

  return app;
}
