/**
 * `serve --workers 2`: a CancelRequest reaches whichever worker the primary hands the connection
 * to; the key names the worker that issued it and the cancel is forwarded there.
 */
import { startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { sendCancelRequest } from '../proxy/proxy-helpers';
import { startSleeper, waitForSleeping, type Sleeper } from './support';

jest.setTimeout(90_000);

let gw: RunningGateway;

beforeAll(async () => {
  gw = await startGateway({ args: ['--workers', '2'], config: { audit: { sink: 'none' } } });
});

afterAll(async () => {
  await stopAllGateways();
});

test('two workers announce one listener; the key names its worker', async () => {
  const ready = await gw.waitForLog((l) => l.msg === 'pgward listening');
  expect(ready.workers).toBe(2);
  for (const w of [0, 1]) await gw.waitForLog((l) => l.msg === 'pgward worker listening' && l.worker === w);
});

test('a cancel for each of 20 pg_sleep(30) ends every one within 1 s', async () => {
  const sleepers: Sleeper[] = [];
  for (let i = 0; i < 20; i++) sleepers.push(await startSleeper(gw.host, gw.port, 30));
  try {
    // Both workers serve clients (round robin), so about half the cancels land on the other one.
    const byWorker = new Set(sleepers.map((s) => (s.secretKey >>> 31) & 1));
    expect(byWorker).toEqual(new Set([0, 1]));
    await waitForSleeping(20);
    const sentAt: number[] = [];
    for (const s of sleepers) {
      sentAt.push(Date.now());
      await sendCancelRequest(gw.host, gw.port, s.processId, s.secretKey);
    }
    const results = await Promise.all(sleepers.map((s) => s.done));
    for (const [i, r] of results.entries()) {
      expect(r.code).toBe('57014');
      expect(r.at - (sentAt[i] as number)).toBeLessThan(1000);
    }
  } finally {
    await Promise.all(sleepers.map((s) => s.client.end().catch(() => undefined)));
  }
});

test('a forged key (right pid and worker bits, wrong secret) cancels nothing', async () => {
  const s = await startSleeper(gw.host, gw.port, 2);
  try {
    await waitForSleeping(1);
    for (let i = 1; i <= 8; i++) {
      await sendCancelRequest(gw.host, gw.port, s.processId, (s.secretKey ^ i) | 0);
      await sendCancelRequest(gw.host, gw.port, s.processId, (s.secretKey ^ (i << 8)) | 0);
    }
    const r = await s.done;
    expect(r.code).toBeNull();
  } finally {
    await s.client.end();
  }
});
