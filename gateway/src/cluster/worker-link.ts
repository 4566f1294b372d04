/**
 * A worker's side of the IPC with the primary: forwards cancels whose key names another process,
 * receives the ones that name this worker, asks for the aggregated metrics and for reloads of
 * every worker, and reports its bundle revision.
 */
import { AggregatorRegistry, type Registry } from 'prom-client';
import { ErrorCodes } from '../errors';
import type { ReloadResult } from '../sidecar/app';
import type { CancelRoute } from './cancel-key';
import { isPgwardMessage, type PrimaryToWorker, type WorkerOp, type WorkerToPrimary } from './messages';

export interface WorkerHandlers {
  deliver(processId: number, secretKey: Buffer, fromPeer: boolean): void;
  commit(revision: string): void;
  reload(): Promise<ReloadResult>;
  capture(action: 'start' | 'stop'): Promise<unknown>;
}

export class WorkerLink {
  private nextId = 1;
  private readonly pending = new Map<number, (m: PrimaryToWorker) => void>();
  private handlers: WorkerHandlers | null = null;
  private readonly revisionWaiters = new Set<() => void>();
  /** Revisions of every worker (index order), as the primary last reported them. */
  revisions: Array<string | null> = [];

  constructor(
    readonly index: number,
    readonly workers: number,
  ) {
    process.on('message', (m: unknown) => {
      if (isPgwardMessage<PrimaryToWorker>(m)) this.onMessage(m);
    });
  }

  attach(h: WorkerHandlers): void {
    this.handlers = h;
  }

  private send(m: WorkerToPrimary): void {
    process.send?.(m);
  }

  private onMessage(m: PrimaryToWorker): void {
    switch (m.pgward) {
      case 'deliver':
        this.handlers?.deliver(m.pid, Buffer.from(m.key, 'hex'), m.fromPeer);
        return;
      case 'all-run': {
        const h = this.handlers;
        const run: Promise<unknown> = h
          ? m.op === 'reload'
            ? h.reload()
            : h.capture(m.op === 'capture-start' ? 'start' : 'stop')
          : Promise.reject(new Error('worker is starting'));
        void run
          .catch((err: Error): ReloadResult => ({
            ok: false,
            error: err.message,
            code: ErrorCodes.BUNDLE_LOAD,
          }))
          .then((result) => this.send({ pgward: 'all-done', id: m.id, result }));
        return;
      }
      case 'revisions':
        this.revisions = m.revisions;
        for (const w of this.revisionWaiters) w();
        return;
      case 'commit':
        this.handlers?.commit(m.revision);
        return;
      case 'metrics-result':
      case 'all-result':
        this.pending.get(m.id)?.(m);
        this.pending.delete(m.id);
        return;
    }
  }

  private request(m: { pgward: 'metrics' } | { pgward: 'all'; op: WorkerOp }): Promise<PrimaryToWorker> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.send({ ...m, id });
    });
  }

  /** Runs `op` in every worker; null when not every worker is running. */
  private async all(op: WorkerOp): Promise<unknown[] | null> {
    const m = await this.request({ pgward: 'all', op });
    return m.pgward === 'all-result' ? m.results : null;
  }

  forwardCancel(route: CancelRoute, processId: number, secretKey: Buffer): Promise<boolean> {
    this.send({ pgward: 'cancel', route, pid: processId, key: secretKey.toString('hex') });
    return Promise.resolve(true);
  }

  /** Sends a key no session of this worker holds to the peers (through the primary). */
  askPeers(processId: number, secretKey: Buffer): Promise<boolean> {
    this.send({ pgward: 'cancel-peers', pid: processId, key: secretKey.toString('hex') });
    return Promise.resolve(true);
  }

  /** Prometheus text of all workers (prom-client's AggregatorRegistry in the primary). */
  async metrics(): Promise<string> {
    const m = await this.request({ pgward: 'metrics' });
    if (m.pgward !== 'metrics-result' || m.text === null) throw new Error('metrics aggregation failed');
    return m.text;
  }

  /** Reloads the bundle in every worker; ok only when all of them run the same new revision. */
  async reloadAll(): Promise<ReloadResult> {
    const results = (await this.all('reload')) as ReloadResult[] | null;
    if (results === null)
      return { ok: false, error: 'not every worker is running', code: ErrorCodes.BUNDLE_LOAD };
    const failed = results.find((r) => !r.ok);
    if (failed) return failed;
    const revisions = new Set(results.map((r) => (r.ok ? r.revision : '')));
    if (revisions.size !== 1)
      return { ok: false, error: 'workers loaded different revisions', code: ErrorCodes.BUNDLE_LOAD };
    const r = results[0] as ReloadResult;
    // Answer once every worker serves it (the primary commits when all have prepared it).
    if (r.ok && !(await this.untilAllRun(r.revision, 10_000)))
      return { ok: false, error: `not every worker switched to ${r.revision}`, code: ErrorCodes.BUNDLE_LOAD };
    return r;
  }

  /** Capture on or off in every worker: each one's stats, in worker order. */
  async captureAll(action: 'start' | 'stop'): Promise<{ workers: unknown[] }> {
    const results = await this.all(action === 'start' ? 'capture-start' : 'capture-stop');
    if (results === null) throw new Error('not every worker is running');
    const failed = results.find((r) => (r as { ok?: boolean }).ok === false);
    if (failed) throw new Error((failed as { error: string }).error);
    return { workers: results };
  }

  reportListening(listen: string, admin: string | null, revision: string | null): void {
    this.send({ pgward: 'listening', listen, admin, revision });
  }

  reportPrepared(revision: string): void {
    this.send({ pgward: 'prepared', revision });
  }

  private untilAllRun(revision: string, timeoutMs: number): Promise<boolean> {
    if (this.allRun(revision)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!this.allRun(revision)) return;
        done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.revisionWaiters.delete(check);
        resolve(ok);
      };
      this.revisionWaiters.add(check);
    });
  }

  reportRevision(revision: string | null): void {
    this.send({ pgward: 'revision', revision });
  }

  /** Every worker runs `revision` (readiness of the instance). */
  allRun(revision: string | null): boolean {
    return (
      revision !== null &&
      this.revisions.length === this.workers &&
      this.revisions.every((r) => r === revision)
    );
  }
}

export function workerLinkFromEnv(env: NodeJS.ProcessEnv): WorkerLink | null {
  const i = env.PGWARD_WORKER_INDEX;
  const n = env.PGWARD_WORKERS;
  if (i === undefined || n === undefined || process.send === undefined) return null;
  return new WorkerLink(Number(i), Number(n));
}

/** Lets the primary's AggregatorRegistry read this worker's registry. */
export function answerMetricsRequests(registry: Registry): void {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one adds prom-client's worker-side listener for the primary's requests.
  void new AggregatorRegistry();
}
