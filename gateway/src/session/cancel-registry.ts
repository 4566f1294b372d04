/**
 * Cancel keys. A client is told the upstream backend's real process id (so that
 * pg_terminate_backend, pg_stat_activity and pool health checks see the truth) with a secret only
 * pgward knows; the upstream's own secret never leaves pgward. A CancelRequest is honoured only
 * with a (pid, secret) pgward issued (constant-time compare); the upstream's key sent to pgward,
 * or pgward's key sent to the server directly, cancels nothing.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export interface Cancellable {
  cancelUpstream(): unknown;
}

interface Entry {
  key: Buffer;
  target: Cancellable;
}

export class CancelRegistry {
  /** By process id: a list, since a pid may come back (another upstream, or reuse after exit). */
  private readonly byPid = new Map<number, Entry[]>();

  /** Issues a fresh secret of `keyBytes` bytes (4 for protocol 3.0, 32 or more for 3.2) for `processId`. */
  issue(target: Cancellable, processId: number, keyBytes: number): Buffer {
    const key = randomBytes(keyBytes);
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

  /** The session a CancelRequest names, if the key is one pgward issued (constant-time compare). */
  lookup(processId: number, secretKey: Buffer): Cancellable | undefined {
    const list = this.byPid.get(processId);
    if (!list) return undefined;
    let found: Cancellable | undefined;
    for (const e of list) {
      if (e.key.length === secretKey.length && timingSafeEqual(e.key, secretKey)) found = e.target;
    }
    return found;
  }
}
