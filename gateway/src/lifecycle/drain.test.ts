import pino from 'pino';
import { SessionDrain, type DrainableSession } from './drain';

/** A session stand-in: idle or busy, answering a cancel after `cancelMs` by going idle. */
class FakeSession implements DrainableSession {
  draining = false;
  cancels = 0;
  fatals: string[] = [];
  constructor(
    private readonly set: Set<FakeSession>,
    private readonly drain_: SessionDrain<FakeSession>,
    public isIdle: boolean,
    private readonly cancelMs: number | null,
  ) {
    set.add(this);
  }
  drain(): void {
    this.draining = true;
    if (this.isIdle) this.end();
  }
  cancelUpstream(): Promise<boolean> {
    this.cancels++;
    const ms = this.cancelMs;
    if (ms === null) return new Promise(() => undefined); // never confirmed
    return new Promise((resolve) =>
      setTimeout(() => {
        resolve(true);
        this.isIdle = true;
        if (this.draining) this.end();
      }, ms),
    );
  }
  fatal(sqlstate: string): void {
    this.fatals.push(sqlstate);
    this.end();
  }
  finishWork(): void {
    this.isIdle = true;
    if (this.draining) this.end();
  }
  private end(): void {
    if (this.set.delete(this)) this.drain_.closed();
  }
}

const logger = pino({ level: 'silent' });

function setup(timings: { delayMs: number; timeoutMs: number; cancelWaitMs: number }) {
  const sessions = new Set<FakeSession>();
  const drain = new SessionDrain(sessions, timings, logger);
  return { sessions, drain };
}

it('stays accepting until run, keeps the listener open for the delay, then drains idle sessions', async () => {
  const { sessions, drain } = setup({ delayMs: 100, timeoutMs: 1000, cancelWaitMs: 100 });
  const idle = new FakeSession(sessions, drain, true, 0);
  expect(drain.accepting).toBe(true);
  let closedAt = 0;
  const t0 = Date.now();
  const done = drain.run(() => (closedAt = Date.now()));
  expect(drain.accepting).toBe(false);
  expect(drain.phase).toBe('delay');
  expect(idle.draining).toBe(false);
  expect(await done).toEqual({ drained: 1, cancelled: 0, terminated: 0 });
  expect(closedAt - t0).toBeGreaterThanOrEqual(95);
  expect(drain.phase).toBe('closed');
  expect(drain.run(() => undefined)).toBe(done);
});

it('waits for busy sessions to finish on their own within the timeout, without cancelling', async () => {
  const { sessions, drain } = setup({ delayMs: 0, timeoutMs: 2000, cancelWaitMs: 100 });
  const busy = new FakeSession(sessions, drain, false, 0);
  const done = drain.run(() => undefined);
  setTimeout(() => busy.finishWork(), 50);
  expect(await done).toEqual({ drained: 1, cancelled: 0, terminated: 0 });
  expect(busy.cancels).toBe(0);
  expect(busy.fatals).toEqual([]);
});

it('at the timeout cancels busy sessions and waits for the server to confirm before returning', async () => {
  const { sessions, drain } = setup({ delayMs: 0, timeoutMs: 50, cancelWaitMs: 2000 });
  const busy = new FakeSession(sessions, drain, false, 150);
  const t0 = Date.now();
  expect(await drain.run(() => undefined)).toEqual({ drained: 0, cancelled: 1, terminated: 0 });
  expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  expect(busy.cancels).toBe(1);
  expect(busy.fatals).toEqual([]);
  expect(sessions.size).toBe(0);
});

it('ends with 57P01 what is still open when the cancel wait runs out', async () => {
  const { sessions, drain } = setup({ delayMs: 0, timeoutMs: 20, cancelWaitMs: 100 });
  const stuck = new FakeSession(sessions, drain, false, null);
  expect(await drain.run(() => undefined)).toEqual({ drained: 0, cancelled: 1, terminated: 1 });
  expect(stuck.fatals).toEqual(['57P01']);
  expect(sessions.size).toBe(0);
});

it('takes new timings until shutdown starts', async () => {
  const { drain } = setup({ delayMs: 10_000, timeoutMs: 10_000, cancelWaitMs: 10_000 });
  drain.retime({ delayMs: 0, timeoutMs: 0, cancelWaitMs: 0 });
  expect(await drain.run(() => undefined)).toEqual({ drained: 0, cancelled: 0, terminated: 0 });
});
