/**
 * Cancel keys. A client is told the upstream backend's real process id (so that
 * pg_terminate_backend, pg_stat_activity and pool health checks see the truth) with a secret only
 * pgward knows; the upstream's own secret never leaves pgward. A CancelRequest is honoured only
 * with a (pid, secret) pgward issued (constant-time compare); the upstream's key sent to pgward,
 * or pgward's key sent to the server directly, cancels nothing.
 *
 * With several workers or peered replicas the secret's first bits name the process that issued it
 * (cluster/cancel-key.ts): a CancelRequest for another process is handed to `forward`, and the
 * issuing process makes the same constant-time comparison (`lookupLocal`) when it arrives there.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
import { timingSafeEqual } from 'node:crypto';
import { SINGLE_PROCESS_LAYOUT, type CancelKeyLayout, type CancelRoute } from '../cluster/cancel-key';

export interface Cancellable {
  cancelUpstream(): unknown;
}

/** Hands a CancelRequest to the process its key names (another worker or another replica). */
export type CancelForward = (route: CancelRoute, processId: number, secretKey: Buffer) => Promise<boolean>;

interface Entry {
  key: Buffer;
  target: Cancellable;
}

export class CancelRegistry {
  /** By process id: a list, since a pid may come back (another upstream, or reuse after exit). */
  private readonly byPid = new Map<number, Entry[]>();

  /**
   * `forward`: keys whose route names another process. `onMiss`: keys that name this process but no
   * session here holds (peers without peer bits: it may be another replica's key).
   */
  constructor(
    readonly layout: CancelKeyLayout = SINGLE_PROCESS_LAYOUT,
    private readonly forward: CancelForward | null = null,
    private readonly onMiss: CancelForward | null = null,
  ) {}

  /** Issues a fresh secret of `keyBytes` bytes (4 for protocol 3.0, 32 or more for 3.2) for `processId`. */
  issue(target: Cancellable, processId: number, keyBytes: number): Buffer {
    const key = this.layout.issue(keyBytes);
    const list = this.byPid.get(processId);
    if (list) list.push({ key, target });
    else this.byPid.set(processId, [{ key, target }]);
    return key;
  }

  release(processId: number, target: Cancellable): void {
    const list = this.byPid.get(processId);
    if (!list) return;
    const kept = list.filter((e) => e.target !== target);
    if (kept.length === 0) this.byPid.delete(processId);
    else this.byPid.set(processId, kept);
  }

  /**
   * The session a CancelRequest names: one of ours if the key is one this process issued, or a
   * forwarder when the key's route names another process (which checks the key itself).
   */
  lookup(processId: number, secretKey: Buffer): Cancellable | undefined {
    const route = this.layout.route(secretKey);
    if (route === null) return undefined;
    if (this.layout.isSelf(route) || this.forward === null) {
      const found = this.lookupLocal(processId, secretKey);
      const onMiss = this.onMiss;
      if (found !== undefined || onMiss === null) return found;
      return { cancelUpstream: () => onMiss(route, processId, secretKey) };
    }
    const forward = this.forward;
    return { cancelUpstream: () => forward(route, processId, secretKey) };
  }

  /** Only the sessions of this process (constant-time compare). */
  lookupLocal(processId: number, secretKey: Buffer): Cancellable | undefined {
    const list = this.byPid.get(processId);
    if (!list) return undefined;
    let found: Cancellable | undefined;
    for (const e of list) {
      if (e.key.length === secretKey.length && timingSafeEqual(e.key, secretKey)) found = e.target;
    }
    return found;
  }
}
