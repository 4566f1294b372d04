/**
 * Graceful shutdown behind a load balancer (Kubernetes Service, or anything that probes /readyz):
 *
 *  1. not ready at once (/readyz answers 503), while the listener keeps accepting for `delayMs`, so
 *     connections routed here before the endpoint change reaches every node still succeed;
 *  2. stop accepting; every session drains (idle ones close now, busy ones when they next go idle);
 *  3. at `timeoutMs`, each session still busy gets a CancelRequest to its backend, and shutdown
 *     waits (at most `cancelWaitMs`) for the server to take it and for the session to end, so no
 *     query outlives the gateway;
 *  4. whatever is left is ended with FATAL 57P01.
 */
import type { Logger } from 'pino';
import { ErrorCodes, type ErrorCode } from '../errors';

/** What the drain needs from a session (gateway/src/session/session.ts provides it). */
export interface DrainableSession {
  /** Ready, outside a transaction, nothing in flight. */
  readonly isIdle: boolean;
  /** Close now when idle, otherwise as soon as the session next becomes idle. */
  drain(): void;
  /**
   * CancelRequest to this session's backend; resolves true once the server has closed the cancel
   * connection (it acts on the request before it closes it), false if it could not be delivered.
   */
  cancelUpstream(): Promise<boolean>;
  /** FATAL to the client, then the connection ends (the session's onClose follows). */
  fatal(sqlstate: string, message: string, code: ErrorCode | null): void;
}

export interface DrainTimings {
  /** Still accepting after SIGTERM while not ready (endpoint propagation). */
  delayMs: number;
  /** From the end of the delay until busy sessions are cancelled. */
  timeoutMs: number;
  /** After the cancel: how long to wait for the server to confirm and the sessions to end. */
  cancelWaitMs: number;
}

export type DrainPhase = 'running' | 'delay' | 'draining' | 'cancelling' | 'closed';

export interface DrainResult {
  /** Sessions that ended by themselves while draining. */
  drained: number;
  /** Sessions whose query was cancelled at the timeout. */
  cancelled: number;
  /** Sessions ended with FATAL 57P01 because they were still open after the cancel wait. */
  terminated: number;
}

/**
 * Tracks the open sessions for shutdown: `closed(s)` must be called from the session's onClose, so
 * the drain waits on events and not on a timer.
 */
export class SessionDrain<S extends DrainableSession> {
  private phase_: DrainPhase = 'running';
  private waiters: Array<() => void> = [];

  constructor(
    readonly sessions: Set<S>,
    private timings: DrainTimings,
    private readonly logger: Logger,
  ) {}

  /** New timings (config reload); ignored once shutdown has started. */
  retime(t: DrainTimings): void {
    if (this.phase_ === 'running') this.timings = { ...t };
  }

  get phase(): DrainPhase {
    return this.phase_;
  }

  /** False from the moment shutdown starts: what /readyz reports. */
  get accepting(): boolean {
    return this.phase_ === 'running';
  }

  /** Call from the session's onClose, after removing it from the set. */
  closed(): void {
    if (this.sessions.size > 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private whenEmpty(ms: number): Promise<boolean> {
    if (this.sessions.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        resolve(ok);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((f) => f !== onEmpty);
        done(this.sessions.size === 0);
      }, ms);
      const onEmpty = (): void => done(true);
      this.waiters.push(onEmpty);
    });
  }

  /**
   * Runs the whole sequence. `stopAccepting` closes the listener (called once, after the delay).
   * Idempotent: the first call's promise is returned to later callers.
   */
  run(stopAccepting: () => void): Promise<DrainResult> {
    this.running ??= this.sequence(stopAccepting);
    return this.running;
  }

  private running: Promise<DrainResult> | null = null;

  private async sequence(stopAccepting: () => void): Promise<DrainResult> {
    const { delayMs, timeoutMs, cancelWaitMs } = this.timings;
    this.phase_ = 'delay';
    this.logger.info(
      {
        sessions: this.sessions.size,
        delay_ms: delayMs,
        timeout_ms: timeoutMs,
        cancel_wait_ms: cancelWaitMs,
      },
      'shutting down: not ready, still accepting connections during the delay',
    );
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));

    this.phase_ = 'draining';
    stopAccepting();
    const atDrain = this.sessions.size;
    this.logger.info({ sessions: atDrain }, 'shutting down: listener closed, draining sessions');
    for (const s of this.sessions) s.drain();
    if (await this.whenEmpty(timeoutMs)) {
      this.phase_ = 'closed';
      return { drained: atDrain, cancelled: 0, terminated: 0 };
    }

    this.phase_ = 'cancelling';
    const busy = [...this.sessions].filter((s) => !s.isIdle);
    this.logger.warn(
      { sessions: this.sessions.size, busy: busy.length, code: ErrorCodes.SHUTDOWN },
      'shutdown timeout: cancelling the queries still running',
    );
    const deadline = Date.now() + cancelWaitMs;
    const acks = await Promise.race([
      Promise.all(busy.map((s) => s.cancelUpstream().catch(() => false))),
      new Promise<null>((r) => setTimeout(() => r(null), cancelWaitMs)),
    ]);
    const left = Math.max(0, deadline - Date.now());
    // The backend answers the cancel with an error and ReadyForQuery; the draining session then ends.
    await this.whenEmpty(left);
    const remaining = [...this.sessions];
    for (const s of remaining) {
      s.fatal('57P01', 'terminating connection due to administrator command', ErrorCodes.SHUTDOWN);
    }
    if (remaining.length > 0 || acks === null || acks.some((a) => !a)) {
      this.logger.warn(
        {
          remaining: remaining.length,
          cancels_confirmed: acks === null ? 0 : acks.filter(Boolean).length,
          cancels_sent: busy.length,
          code: ErrorCodes.SHUTDOWN,
        },
        'shutdown: sessions still open after the cancel wait were terminated',
      );
    }
    this.phase_ = 'closed';
    return { drained: atDrain - busy.length, cancelled: busy.length, terminated: remaining.length };
  }
}
