/**
 * Cancel keys. pgward hands every client its own BackendKeyData and keeps the upstream's to itself,
 * so a CancelRequest is honoured only with a key pgward issued; a real upstream key sent to pgward
 * matches nothing. https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

export interface Cancellable {
  cancelUpstream(): unknown;
}

interface Entry {
  key: Buffer;
  target: Cancellable;
}

export class CancelRegistry {
  private readonly byPid = new Map<number, Entry>();

  /** Issues a fresh (processId, secretKey) for a session. keyBytes: 4 for protocol 3.0, up to 256 for 3.2. */
  issue(target: Cancellable, keyBytes = 4): { processId: number; secretKey: Buffer } {
    let pid: number;
    do pid = randomInt(1, 0x7fffffff);
    while (this.byPid.has(pid));
    const key = randomBytes(keyBytes);
    this.byPid.set(pid, { key, target });
    return { processId: pid, secretKey: key };
  }

  release(processId: number): void {
    this.byPid.delete(processId);
  }

  /** The session a CancelRequest names, if the key is one pgward issued (constant-time compare). */
  lookup(processId: number, secretKey: Buffer): Cancellable | undefined {
    const e = this.byPid.get(processId);
    if (!e || e.key.length !== secretKey.length) return undefined;
    return timingSafeEqual(e.key, secretKey) ? e.target : undefined;
  }
}
