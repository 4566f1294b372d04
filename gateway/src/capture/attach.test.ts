import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { buildSidecar } from '../sidecar/app';
import { createMetrics } from '../metrics/metrics';
import type { SessionObserver } from '../session/types';
import type { ConnectionInfo } from '../policy/types';
import {
  encodeQuery,
  encodeReadyForQuery,
  encodeStartupMessage,
  PROTOCOL_3_0,
  readFrontendMessage,
} from '../protocol';
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

function sinkIn(dir: string, redact: boolean): CaptureSink {
  return new CaptureSink({
    dir,
    users: [],
    databases: [],
    applications: [],
    max_file_bytes: 1 << 20,
    max_file_age_s: 60,
    redact: { parameters: redact, literals: redact },
    maxSqlBytesInInput: 1024,
  });
}

test('POST /v1/capture/start|stop switch the observer hook, behind the admin token', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-attach-'));
  const closed: string[] = [];
  const obs = observer(closed);
  const sink = sinkIn(dir, false);
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

test('hands the session’s decoded message and SQL text to the sink (redaction needs them)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-attach-'));
  const obs = observer([]);
  const sink = sinkIn(dir, true);
  const capture = attachCapture(obs, sink);
  await capture.start();
  const c = {
    id: 'a1',
    user: 'u',
    database: 'd',
    application_name: null,
    authenticated: false,
    transaction_status: 'I',
    protocol_version: '3.0',
  } as unknown as ConnectionInfo;
  const startup = encodeStartupMessage(PROTOCOL_3_0, [['user', 'u']]);
  obs.onFrame!('frontend', startup, c, readFrontendMessage({ type: 0, bytes: startup, bodyOffset: 4 }));
  obs.onFrame!('backend', encodeReadyForQuery('I'), c);
  const q = encodeQuery("SELECT 'secret'");
  obs.onFrame!(
    'frontend',
    q,
    c,
    readFrontendMessage({ type: q[0]!, bytes: q, bodyOffset: 5 }),
    "SELECT 'secret'",
  );
  await capture.stop();
  const lines = fs
    .readdirSync(dir)
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as { dir?: string; ts?: string; frame?: string });
  const written = lines.filter((l) => l.dir === 'F' && l.ts).map((l) => Buffer.from(l.frame!, 'base64'));
  expect(written).toHaveLength(1);
  expect(written[0]!.toString()).not.toContain('secret');
  fs.rmSync(dir, { recursive: true, force: true });
});
