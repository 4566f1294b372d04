/**
 * A worker's side of the IPC with the primary: forwards cancels whose key names another process,
 * receives the ones that name this worker, asks for the aggregated metrics and for reloads of
 * every worker, and reports its bundle revision.
 */
import { AggregatorRegistry, type Registry } from 'prom-client';
import { ErrorCodes } from '../errors';
import type { ReloadResult } from '../sidecar/app';
import type { CancelRoute } from './cancel-key';
import { isPgwardMessage, type PrimaryToWorker, type WorkerToPrimary } from './messages';

export interface WorkerHandlers {
  deliver(processId: number, secretKey: Buffer, fromPeer: boolean): void;
  reload(): Promise<ReloadResult>;
}

export class WorkerLink {
  private nextId = 1;
  private readonly pending = new Map<number, (m: PrimaryToWorker) => void>();
  private handlers: WorkerHandlers | null = null;
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
      case 'reload-run': {
        const run =
          this.handlers?.reload() ??
          Promise.resolve<ReloadResult>({ ok: false, error: 'starting', code: ErrorCodes.BUNDLE_LOAD });
        void run
          .catch((err: Error): ReloadResult => ({
            ok: false,
            error: err.message,
            code: ErrorCodes.BUNDLE_LOAD,
          }))
          .then((result) => this.send({ pgward: 'reload-done', id: m.id, result }));
        return;
      }
      case 'revisions':
        this.revisions = m.revisions;
        return;
      case 'metrics-result':
      case 'reload-result':
        this.pending.get(m.id)?.(m);
        this.pending.delete(m.id);
        return;
    }
  }

  private request(kind: 'metrics' | 'reload'): Promise<PrimaryToWorker> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.send({ pgward: kind, id });
    });
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
    const m = await this.request('metrics');
    if (m.pgward !== 'metrics-result' || m.text === null) throw new Error('metrics aggregation failed');
    return m.text;
  }

  /** Reloads the bundle in every worker; ok only when all of them run the same new revision. */
  async reloadAll(): Promise<ReloadResult> {
    const m = await this.request('reload');
    if (m.pgward !== 'reload-result') throw new Error('unexpected answer');
    return m.result;
  }

  reportListening(listen: string, admin: string | null, revision: string | null): void {
    this.send({ pgward: 'listening', listen, admin, revision });
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
