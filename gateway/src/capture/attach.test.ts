import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { buildSidecar } from '../sidecar/app';
import { createMetrics } from '../metrics/metrics';
import type { SessionObserver } from '../session/types';
import { CaptureSink } from './capture-sink';
import { attachCapture } from './attach';

function observer(closed: string[]): SessionObserver {
  return {
    onDecision: () => true,
    onError: () => undefined,
    onConnectionOpened: () => undefined,
    onConnectionClosed: (outcome) => closed.push(outcome),
    onAuthenticated: () => undefined,
    onBytes: () => undefined,
    onUpstreamConnectError: () => undefined,
  };
}

test('POST /v1/capture/start|stop switch the observer hook, behind the admin token', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-attach-'));
  const closed: string[] = [];
  const obs = observer(closed);
  const sink = new CaptureSink({
    dir,
    users: [],
    databases: [],
    applications: [],
    max_file_bytes: 1 << 20,
    max_file_age_s: 60,
    redact: { parameters: false, literals: false },
    maxSqlBytesInInput: 1024,
  });
  const capture = attachCapture(obs, sink);
  const metrics = createMetrics(new Registry());
  const app = buildSidecar({
    engine: {
      evaluate: () => {
        throw new Error('unused');
      },
      bundle: () => null,
    },
    bundleStatus: () => ({ info: null, last_reload_error: null, last_reload_at: null }),
    reload: () => Promise.resolve({ ok: true, revision: 'x' }),
    upstreamReady: () => Promise.resolve(true),
    registry: metrics.registry,
    token: 's3cret',
    capture,
  });
  expect(obs.onFrame).toBeUndefined();
  expect((await app.inject({ method: 'POST', url: '/v1/capture/start' })).statusCode).toBe(401);
  const started = await app.inject({
    method: 'POST',
    url: '/v1/capture/start',
    headers: { authorization: 'Bearer s3cret' },
  });
  expect(started.statusCode).toBe(200);
  expect(started.json()).toMatchObject({ active: true });
  expect(typeof obs.onFrame).toBe('function');
  obs.onConnectionClosed('client_terminated', { id: 'x' } as never);
  expect(closed).toEqual(['client_terminated']);
  const stopped = await app.inject({
    method: 'POST',
    url: '/v1/capture/stop',
    headers: { authorization: 'Bearer s3cret' },
  });
  expect(stopped.json()).toMatchObject({ active: false });
  expect(obs.onFrame).toBeUndefined();
  const none = buildSidecar({
    engine: {
      evaluate: () => {
        throw new Error('unused');
      },
      bundle: () => null,
    },
    bundleStatus: () => ({ info: null, last_reload_error: null, last_reload_at: null }),
    reload: () => Promise.resolve({ ok: true, revision: 'x' }),
    upstreamReady: () => Promise.resolve(true),
    registry: new Registry(),
  });
  expect((await none.inject({ method: 'POST', url: '/v1/capture/start' })).statusCode).toBe(404);
  fs.rmSync(dir, { recursive: true, force: true });
});
