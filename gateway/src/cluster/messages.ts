/**
 * IPC between the primary and its workers (Node.js `cluster`): every message is a plain object with a
 * `pgward` discriminator. Cancel keys travel as hex.
 */
import type { CancelRoute } from './cancel-key';

export type WorkerToPrimary =
  | { pgward: 'cancel'; route: CancelRoute; pid: number; key: string }
  /** A key of this worker's route that no session here holds: ask the peers (no peer bits). */
  | { pgward: 'cancel-peers'; pid: number; key: string }
  | { pgward: 'metrics'; id: number }
  /** Run `op` in every worker (asked by worker 0's sidecar); the answer lists each one's result. */
  | { pgward: 'all'; id: number; op: WorkerOp }
  | { pgward: 'all-done'; id: number; result: unknown }
  | { pgward: 'revision'; revision: string | null }
  /** Built and smoke-tested, waiting for `commit` (cluster/gated-engine.ts). */
  | { pgward: 'prepared'; revision: string }
  | { pgward: 'listening'; listen: string; admin: string | null; revision: string | null };

export type PrimaryToWorker =
  /** `fromPeer`: it came over the peer channel and is never sent on. */
  | { pgward: 'deliver'; pid: number; key: string; fromPeer: boolean }
  | { pgward: 'metrics-result'; id: number; text: string | null }
  | { pgward: 'all-run'; id: number; op: WorkerOp }
  /** Index order; null when not every worker was running. */
  | { pgward: 'all-result'; id: number; results: unknown[] | null }
  | { pgward: 'revisions'; revisions: Array<string | null> }
  | { pgward: 'commit'; revision: string };

export type WorkerOp = 'reload' | 'capture-start' | 'capture-stop';

export function isPgwardMessage<T extends { pgward: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { pgward?: unknown }).pgward === 'string';
}

/** Environment a worker is forked with. */
export const WORKER_INDEX_ENV = 'PGWARD_WORKER_INDEX';
export const WORKERS_ENV = 'PGWARD_WORKERS';

/** This instance's share of a whole-instance limit: the shares of all workers add up to `total`. */
export function shareOf(total: number, workers: number, index: number): number {
  return Math.floor(total / workers) + (index < total % workers ? 1 : 0);
}
