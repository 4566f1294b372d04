import { loadConfig } from '../config';
import { shareOf } from './messages';
import { decodePeerCancel, encodePeerCancel, MAX_SKEW_MS } from './peer-channel';
import { configForWorker, workerFile } from './worker-files';

describe('peer channel messages', () => {
  const secret = Buffer.from('s3cret');
  const cancel = { processId: 4242, secretKey: Buffer.from('0102030405060708', 'hex') };

  test('round trip', () => {
    const v = decodePeerCancel(secret, encodePeerCancel(secret, cancel, 1000), 1000);
    expect(v.ok && v.cancel).toEqual(cancel);
  });

  test('a wrong secret, any flipped byte, truncation or a stale timestamp is refused', () => {
    const msg = encodePeerCancel(secret, cancel, 1000);
    expect(decodePeerCancel(Buffer.from('other'), msg, 1000)).toEqual({ ok: false, reason: 'bad MAC' });
    for (let i = 0; i < msg.length; i++) {
      const m = Buffer.from(msg);
      m[i] = (m[i] as number) ^ 0x01;
      expect(decodePeerCancel(secret, m, 1000).ok).toBe(false);
    }
    expect(decodePeerCancel(secret, msg.subarray(0, msg.length - 1), 1000).ok).toBe(false);
    expect(decodePeerCancel(secret, msg, 1000 + MAX_SKEW_MS + 1)).toEqual({ ok: false, reason: 'stale' });
  });

  test('two messages for the same cancel have different nonces', () => {
    const a = decodePeerCancel(secret, encodePeerCancel(secret, cancel, 1), 1);
    const b = decodePeerCancel(secret, encodePeerCancel(secret, cancel, 1), 1);
    expect(a.ok && b.ok && a.nonce !== b.nonce).toBe(true);
  });
});

describe('per-worker shares and files', () => {
  test('shares add up to the limit', () => {
    for (const [total, n] of [
      [1, 2],
      [101, 2],
      [10_000, 3],
      [7, 8],
    ] as const) {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += shareOf(total, n, i);
      expect(sum).toBe(total);
    }
  });

  test('file sinks and the capture directory are per worker', () => {
    expect(workerFile('/var/log/audit.jsonl', 1)).toBe('/var/log/audit.w1.jsonl');
    expect(workerFile('audit', 0)).toBe('audit.w0');
    const base = loadConfig({
      env: {},
      flags: {},
    });
    const c = configForWorker(
      { ...base, audit: { ...base.audit, file: { ...base.audit.file, path: '/tmp/a.log' } } },
      3,
    );
    expect(c.audit.file.path).toBe('/tmp/a.w3.log');
    expect(c.decision_log.file.path).toBeUndefined();
    expect(c.capture.dir).toBe('.tmp/capture/w3');
  });
});
