/**
 * Cancel key routing (pgbouncer's `peer_id` idea). The client is told the upstream's real process
 * id, so the routing lives in the secret pgward issues: its first bits name the replica (peer) and
 * the worker process that issued it, the rest is random.
 *
 *   bit 0 ............ peerBits-1 | peerBits ... peerBits+workerBits-1 | rest of the key
 *   peer id (0 when not peered)   | worker index (0 with one worker)    | random
 *
 * A forged key routes somewhere and cancels nothing there: the issuing process still compares the
 * whole secret in constant time (cancel-registry.ts). Entropy of a key is therefore
 * `8 × length − peerBits − workerBits`: protocol 3.0 (4 bytes) keeps at least 16 random bits
 * (peerBits ≤ 8, workerBits ≤ 8) and 31 with two workers and no peers; protocol 3.2 keys are 32
 * bytes or more, so at least 240 bits.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BACKENDKEYDATA
 */
import { randomBytes } from 'node:crypto';

export const MAX_PEER_BITS = 8;
export const MAX_WORKER_BITS = 8;
/** Workers a key can name: 2^MAX_WORKER_BITS. */
export const MAX_WORKERS = 1 << MAX_WORKER_BITS;

export interface CancelRoute {
  peer: number;
  worker: number;
}

export interface CancelKeyLayoutOptions {
  /** Bits naming the replica; the same on every peer (0: no peering). */
  peerBits: number;
  peerId: number;
  /** Worker processes of this instance (1: one process). */
  workers: number;
  workerIndex: number;
}

/** The bits needed to name `n` distinct values (0 for one value). */
export function bitsFor(n: number): number {
  let b = 0;
  while (1 << b < n) b++;
  return b;
}

export class CancelKeyLayout {
  readonly peerBits: number;
  readonly workerBits: number;
  readonly self: CancelRoute;
  private readonly routeBits: number;

  constructor(o: CancelKeyLayoutOptions) {
    if (!Number.isInteger(o.peerBits) || o.peerBits < 0 || o.peerBits > MAX_PEER_BITS)
      throw new RangeError(`peer bits must be 0..${MAX_PEER_BITS}`);
    if (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > MAX_WORKERS)
      throw new RangeError(`workers must be 1..${MAX_WORKERS}`);
    if (!Number.isInteger(o.peerId) || o.peerId < 0 || o.peerId >= 1 << o.peerBits)
      throw new RangeError(`peer id ${o.peerId} does not fit in ${o.peerBits} bits`);
    if (!Number.isInteger(o.workerIndex) || o.workerIndex < 0 || o.workerIndex >= o.workers)
      throw new RangeError(`worker index ${o.workerIndex} out of 0..${o.workers - 1}`);
    this.peerBits = o.peerBits;
    this.workerBits = bitsFor(o.workers);
    this.routeBits = this.peerBits + this.workerBits;
    this.self = { peer: o.peerId, worker: o.workerIndex };
  }

  /** Random bits left in a key of `bytes` bytes. */
  randomBits(bytes: number): number {
    return bytes * 8 - this.routeBits;
  }

  /** A fresh secret of `bytes` bytes (at least 2) that routes to this process. */
  issue(bytes: number): Buffer {
    if (bytes < 2) throw new RangeError('a cancel key has at least 2 bytes');
    const key = randomBytes(bytes);
    if (this.routeBits === 0) return key;
    const route = (this.self.peer << this.workerBits) | this.self.worker;
    const low = 16 - this.routeBits;
    const head = (route << low) | (key.readUInt16BE(0) & ((1 << low) - 1));
    key.writeUInt16BE(head, 0);
    return key;
  }

  /** Where a secret says it was issued; null when it is too short to be one of ours. */
  route(secret: Buffer): CancelRoute | null {
    if (secret.length < 2) return null;
    if (this.routeBits === 0) return { peer: 0, worker: 0 };
    const r = secret.readUInt16BE(0) >>> (16 - this.routeBits);
    return { peer: r >>> this.workerBits, worker: r & ((1 << this.workerBits) - 1) };
  }

  isSelf(r: CancelRoute): boolean {
    return r.peer === this.self.peer && r.worker === this.self.worker;
  }
}

/** One process, no peers: today's layout (every bit random). */
export const SINGLE_PROCESS_LAYOUT = new CancelKeyLayout({
  peerBits: 0,
  peerId: 0,
  workers: 1,
  workerIndex: 0,
});
