/**
 * The active bundle's life: the first load, reloads on request (sidecar, SIGHUP) and on file
 * change. A reload builds the new engine, smoke-tests it, and swaps one reference; on any failure
 * the previous bundle stays active and the reason is kept for /v1/bundle.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { PgwardError, ErrorCodes } from '../errors';
import { ActiveEngine, buildEngineFromSource } from './opa-engine';
import type { BundleInfo, PolicyEngine } from './types';

export type ReloadResult = { ok: true; revision: string } | { ok: false; error: string; code: string };

export interface BundleStatus {
  info: BundleInfo | null;
  last_reload_error: string | null;
  last_reload_at: string | null;
}

export interface BundleManagerOptions {
  source: string;
  entrypoint: string;
  memoryMaxPages?: number | undefined;
  watch: boolean;
  watchDebounceMs: number;
}

export interface BundleManagerHooks {
  logger: Logger;
  onActivated(info: BundleInfo): void;
  onFailed(code: string, error: string): void;
}

/** Builds a ready engine for a source; the default loads a file, directory or URL. */
export type EngineFactory = (source: string) => Promise<PolicyEngine>;

export class BundleManager {
  private lastError: string | null = null;
  private lastAt: string | null = null;
  private inFlight: Promise<ReloadResult> | null = null;
  private again = false;
  private watcher: fs.FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private readonly factory: EngineFactory;

  constructor(
    readonly active: ActiveEngine,
    private readonly opts: BundleManagerOptions,
    private readonly hooks: BundleManagerHooks,
    factory?: EngineFactory,
  ) {
    this.factory =
      factory ??
      ((source) =>
        buildEngineFromSource(source, {
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
      if (this.again) {
        this.again = false;
        void this.reload();
      }
    });
    return this.inFlight;
  }

  private async doReload(): Promise<ReloadResult> {
    this.lastAt = new Date().toISOString();
    try {
      const engine = await this.factory(this.opts.source);
      const info = engine.bundle();
      this.active.swap(engine);
      this.lastError = null;
      if (info) this.hooks.onActivated(info);
      this.hooks.logger.info(
        { revision: info?.revision, source: this.opts.source },
        'policy bundle activated',
      );
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
          source: this.opts.source,
          active_revision: this.active.bundle()?.revision ?? null,
        },
        'policy bundle reload failed; the previous bundle stays active',
      );
      return { ok: false, error: message, code };
    }
  }

  /** Initial load (a failure leaves the gateway not ready, never crashed) and file watching. */
  async start(): Promise<ReloadResult> {
    const r = await this.reload();
    if (this.opts.watch && !/^https?:\/\//.test(this.opts.source)) this.watch();
    return r;
  }

  private watch(): void {
    const target = path.resolve(this.opts.source);
    const dir = fs.existsSync(target) && fs.statSync(target).isDirectory() ? target : path.dirname(target);
    const base = path.basename(target);
    try {
      // Watch the directory: bundles are usually replaced by rename, which ends a file watch.
      this.watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
        if (dir !== target && name !== null && name !== base) return;
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.reload(), this.opts.watchDebounceMs);
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
    this.watcher?.close();
    this.watcher = null;
    if (this.debounce) clearTimeout(this.debounce);
  }
}
