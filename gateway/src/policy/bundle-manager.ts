/**
 * The active bundle's life: the first load, reloads on request (sidecar, SIGHUP), on file change
 * (debounced) and, for an HTTP(S) bundle server, on a polling schedule. A reload fetches the bundle,
 * verifies its signature when configured, builds the new engine, smoke-tests it, and swaps one
 * reference; on any failure the previous bundle stays active and the reason is kept for /v1/bundle.
 * Each decision is made by exactly one engine, so by exactly one revision.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { PgwardError, ErrorCodes } from '../errors';
import type { LoadedBundle } from './bundle';
import { createBundleSource, type BundleSource, type SourceVersion } from './bundle-source';
import {
  createSignatureVerifier,
  verifyBundleSignature,
  type SignatureVerifier,
  type SigningOptions,
} from './bundle-signature';
import { ActiveEngine, OpaWasmEngine, smokeInputs } from './opa-engine';
import type { BundleInfo, PolicyEngine } from './types';

export type ReloadResult =
  { ok: true; revision: string; unchanged?: boolean } | { ok: false; error: string; code: string };

export interface BundleStatus {
  info: BundleInfo | null;
  last_reload_error: string | null;
  last_reload_at: string | null;
}

export interface BundleManagerOptions {
  /** A `.tar.gz` file, a directory, or an http(s) URL of a bundle server. */
  source: string;
  entrypoint: string;
  memoryMaxPages?: number | undefined;
  /** Local sources: reload when the file or directory changes. */
  watch: boolean;
  watchDebounceMs: number;
  /** HTTP sources: the delay between polls is drawn uniformly from [min, max]. Defaults 10 s / 30 s. */
  pollMinDelayMs?: number | undefined;
  pollMaxDelayMs?: number | undefined;
  /** HTTP sources: `Authorization: Bearer` token, or a file holding it (read before each request). */
  bearerToken?: string | undefined;
  bearerTokenFile?: string | undefined;
  /** HTTP sources: timeout of one download. Default 30 s. */
  fetchTimeoutMs?: number | undefined;
  /** Bound on the bundle size (download and unpacked). Default 64 MiB. */
  maxBundleBytes?: number | undefined;
  /** When set, only bundles signed with this key are activated. */
  signing?: SigningOptions | undefined;
}

export interface BundleManagerHooks {
  logger: Logger;
  onActivated(info: BundleInfo): void;
  onFailed(code: string, error: string): void;
}

/** Builds a ready (instantiated, not yet smoke-tested) engine from a loaded, verified bundle. */
export type EngineFactory = (bundle: LoadedBundle) => Promise<PolicyEngine>;

const DEFAULT_POLL_MIN_MS = 10_000;
const DEFAULT_POLL_MAX_MS = 30_000;
/** Retry delays after failed polls grow by this factor from the minimum delay up to the maximum. */
const BACKOFF_FACTOR = 1.6;
const BACKOFF_JITTER = 0.2;
/** The symlink the kubelet's atomic writer swaps to update a ConfigMap, Secret or projected volume. */
export const KUBELET_DATA_LINK = '..data';

function realpathOrNull(p: string): string | null {
  try {
    return fs.realpathSync(p);
  } catch {
    return null;
  }
}

export class BundleManager {
  private lastError: string | null = null;
  private lastAt: string | null = null;
  private inFlight: Promise<ReloadResult> | null = null;
  private again = false;
  private watcher: fs.FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private failedPolls = 0;
  private stopped = false;
  private factory: EngineFactory;
  private source: BundleSource;
  private verifier: SignatureVerifier | null;

  constructor(
    readonly active: ActiveEngine,
    private opts: BundleManagerOptions,
    private readonly hooks: BundleManagerHooks,
    factory?: EngineFactory,
  ) {
    this.injectedFactory = factory;
    this.factory =
      factory ??
      ((bundle) =>
        OpaWasmEngine.create(bundle, {
          entrypoint: opts.entrypoint,
          ...(opts.memoryMaxPages !== undefined ? { memoryMaxPages: opts.memoryMaxPages } : {}),
        }));
    // A bad key or token configuration fails here, at startup, not at the first reload.
    this.verifier = opts.signing ? createSignatureVerifier(opts.signing) : null;
    this.source = createBundleSource(opts.source, {
      maxBytes: opts.maxBundleBytes,
      bearerToken: opts.bearerToken,
      bearerTokenFile: opts.bearerTokenFile,
      timeoutMs: opts.fetchTimeoutMs,
      userAgent: 'pgward',
    });
  }

  private readonly injectedFactory: EngineFactory | undefined;

  /**
   * Points the manager at a new source (a config reload): stops watching or polling the old one.
   * Call start() next; the active bundle keeps serving until a bundle from the new source passes.
   * Throws (and changes nothing) when the new signing or token configuration is bad.
   */
  retarget(opts: BundleManagerOptions): void {
    const verifier = opts.signing ? createSignatureVerifier(opts.signing) : null;
    const source = createBundleSource(opts.source, {
      maxBytes: opts.maxBundleBytes,
      bearerToken: opts.bearerToken,
      bearerTokenFile: opts.bearerTokenFile,
      timeoutMs: opts.fetchTimeoutMs,
      userAgent: 'pgward',
    });
    this.stop();
    this.opts = opts;
    this.verifier = verifier;
    this.source = source;
    this.factory =
      this.injectedFactory ??
      ((bundle) =>
        OpaWasmEngine.create(bundle, {
          entrypoint: opts.entrypoint,
          ...(opts.memoryMaxPages !== undefined ? { memoryMaxPages: opts.memoryMaxPages } : {}),
        }));
  }

  status(): BundleStatus {
    return { info: this.active.bundle(), last_reload_error: this.lastError, last_reload_at: this.lastAt };
  }

  /** One reload at a time; a request during a reload runs once more after it. */
  reload(): Promise<ReloadResult> {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.inFlight = this.doReload().finally(() => {
      this.inFlight = null;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.reload();
      }
    });
    return this.inFlight;
  }

  private async doReload(): Promise<ReloadResult> {
    this.lastAt = new Date().toISOString();
    try {
      const outcome = await this.source.fetch();
      if (outcome.kind === 'unchanged') {
        const info = this.active.bundle();
        this.lastError = null;
        this.hooks.logger.debug(
          { source: this.source.location, revision: info?.revision },
          'policy bundle unchanged',
        );
        return { ok: true, revision: info?.revision ?? '', unchanged: true };
      }
      const info = await this.activate(outcome.bundle, outcome.version);
      return { ok: true, revision: info?.revision ?? '' };
    } catch (err) {
      const code = err instanceof PgwardError ? err.code : ErrorCodes.BUNDLE_LOAD;
      const message = err instanceof Error ? err.message : String(err);
      this.lastError = `${code}: ${message}`;
      this.hooks.onFailed(code, message);
      this.hooks.logger.error(
        {
          code,
          err: message,
          source: this.source.location,
          active_revision: this.active.bundle()?.revision ?? null,
        },
        'policy bundle reload failed; the previous bundle stays active',
      );
      return { ok: false, error: message, code };
    }
  }

  /** Verify, build, smoke-test, swap. Throws PgwardError; nothing changes on failure. */
  private async activate(bundle: LoadedBundle, version: SourceVersion): Promise<BundleInfo | null> {
    if (this.verifier !== null) {
      const sig = verifyBundleSignature(bundle.files, this.verifier);
      this.hooks.logger.debug(
        { key_id: sig.keyId, files: sig.files.length },
        'policy bundle signature verified',
      );
    }
    const engine = await this.factory(bundle);
    for (const input of smokeInputs()) {
      let decision;
      try {
        decision = engine.evaluate(input);
      } catch (err) {
        throw new PgwardError(
          ErrorCodes.BUNDLE_SMOKE,
          `bundle ${bundle.source} threw in the smoke test on ${input.message.type}: ${(err as Error).message}`,
        );
      }
      if (decision.error_code !== null) {
        const detail = (decision as { error_message?: string | null }).error_message ?? '';
        throw new PgwardError(
          ErrorCodes.BUNDLE_SMOKE,
          `bundle ${bundle.source} failed the smoke test on ${input.message.type}: ${decision.error_code}: ${detail}`,
        );
      }
    }
    const info = engine.bundle();
    this.active.swap(engine);
    this.source.commit(version);
    this.lastError = null;
    if (info) this.hooks.onActivated(info);
    this.hooks.logger.info(
      {
        revision: info?.revision,
        source: this.source.location,
        signed: this.verifier !== null,
        // What the bundle's rules read (null: not recorded, the whole document).
        input_paths: info?.input_paths ?? null,
      },
      'policy bundle activated',
    );
    return info;
  }

  /**
   * Initial load (a failure leaves the gateway not ready, never crashed), then file watching for
   * a local source or polling for a bundle server.
   */
  async start(): Promise<ReloadResult> {
    this.stopped = false;
    const r = await this.reload();
    if (this.stopped) return r;
    if (this.source.kind === 'http') {
      this.failedPolls = r.ok ? 0 : 1;
      this.schedulePoll();
    } else if (this.opts.watch) {
      this.watch();
    }
    return r;
  }

  /** The delay before the next poll: uniform in [min, max], or a growing backoff after failures. */
  nextPollDelayMs(): number {
    const min = this.opts.pollMinDelayMs ?? DEFAULT_POLL_MIN_MS;
    const max = Math.max(min, this.opts.pollMaxDelayMs ?? DEFAULT_POLL_MAX_MS);
    if (this.failedPolls === 0) return min + Math.random() * (max - min);
    const backoff = Math.min(max, min * BACKOFF_FACTOR ** (this.failedPolls - 1));
    return backoff * (1 + BACKOFF_JITTER * (Math.random() * 2 - 1));
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    const delay = this.nextPollDelayMs();
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      void this.reload().then((r) => {
        this.failedPolls = r.ok ? 0 : this.failedPolls + 1;
        this.schedulePoll();
      });
    }, delay);
    this.pollTimer.unref();
  }

  private watch(): void {
    const target = path.resolve(this.opts.source);
    const dir = fs.existsSync(target) && fs.statSync(target).isDirectory() ? target : path.dirname(target);
    const base = path.basename(target);
    // What the path resolves to now: a ConfigMap or Secret volume changes it by swapping `..data`.
    let resolved = realpathOrNull(target);
    try {
      // Watch the directory: bundles are usually replaced by rename, which ends a file watch. A
      // ConfigMap/Secret volume (the kubelet's atomic writer) never touches the visible name
      // (`bundle.tar.gz -> ..data/bundle.tar.gz`): it renames `..data_tmp` over `..data`, so that
      // rename, or any change of where the path resolves to, is a change of the bundle too.
      this.watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
        if (dir !== target && name !== null && name !== base && name !== KUBELET_DATA_LINK) {
          const now = realpathOrNull(target);
          if (now === resolved) return;
          resolved = now;
        }
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => {
          this.debounce = null;
          resolved = realpathOrNull(target);
          void this.reload();
        }, this.opts.watchDebounceMs);
        this.debounce.unref();
      });
      this.watcher.on('error', (err) => this.hooks.logger.warn({ err: err.message }, 'bundle watch failed'));
    } catch (err) {
      this.hooks.logger.warn(
        { err: (err as Error).message, dir },
        'cannot watch the bundle; reload with SIGHUP or the sidecar',
      );
    }
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = null;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = null;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    this.source.close();
  }
}
