/**
 * `serve --workers 2`: limits hold for the whole instance (each worker serves its share), and each
 * worker writes its own audit file, whole JSON lines only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'pg';
import { startGateway, stopAllGateways } from '../helpers/gateway';
import { connectThrough } from './support';

jest.setTimeout(90_000);

let dir = '';

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-workers-limits-'));
});

afterAll(async () => {
  await stopAllGateways();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('max_clients 2 over two workers: two clients in, the next ones refused with 53300', async () => {
  const gw = await startGateway({
    args: ['--workers', '2'],
    config: { audit: { sink: 'none' }, limits: { max_clients: 2 } },
  });
  const open: Client[] = [];
  try {
    open.push(await connectThrough(gw.host, gw.port));
    open.push(await connectThrough(gw.host, gw.port));
    for (let i = 0; i < 4; i++) {
      await expect(connectThrough(gw.host, gw.port)).rejects.toMatchObject({ code: '53300' });
    }
    const text = await (await gw.admin('/metrics')).text();
    expect(text).toMatch(/^pgward_connections_max 2$/m);
    expect(text).toMatch(/^pgward_connections_active 2$/m);
  } finally {
    await Promise.all(open.map((c) => c.end()));
    await gw.stop();
  }
});

test('file sinks: one audit file per worker, every line a whole record', async () => {
  const file = path.join(dir, 'audit.jsonl');
  const gw = await startGateway({
    args: ['--workers', '2'],
    config: { audit: { sink: 'file', file: { path: file } } },
  });
  const clients: Client[] = [];
  try {
    // Denied statements make audit records; round robin spreads the clients over both workers.
    for (let i = 0; i < 6; i++) clients.push(await connectThrough(gw.host, gw.port));
    await Promise.all(
      clients.map((c, i) => c.query(`DROP TABLE pgward_workers_audit_${i}`).catch(() => undefined)),
    );
  } finally {
    await Promise.all(clients.map((c) => c.end()));
    await gw.stop();
  }
  expect(fs.existsSync(file)).toBe(false);
  let records = 0;
  for (const w of [0, 1]) {
    const lines = fs
      .readFileSync(path.join(dir, `audit.w${w}.jsonl`), 'utf8')
      .trimEnd()
      .split('\n');
    for (const l of lines) expect((JSON.parse(l) as { kind: string }).kind).toBe('deny');
    records += lines.length;
  }
  expect(records).toBe(6);
});

test('capture on and off through the sidecar reaches every worker, one directory each', async () => {
  const captureDir = path.join(dir, 'capture');
  const gw = await startGateway({
    args: ['--workers', '2'],
    config: { audit: { sink: 'none' }, capture: { dir: captureDir } },
  });
  try {
    const start = await gw.admin('/v1/capture/start', { method: 'POST' });
    expect(start.status).toBe(200);
    const started = (await start.json()) as { workers: Array<{ active: boolean }> };
    expect(started.workers.map((w) => w.active)).toEqual([true, true]);
    const clients: Client[] = [];
    for (let i = 0; i < 4; i++) clients.push(await connectThrough(gw.host, gw.port));
    await Promise.all(clients.map((c) => c.query('SELECT 1')));
    await Promise.all(clients.map((c) => c.end()));
    const stop = await gw.admin('/v1/capture/stop', { method: 'POST' });
    const stopped = (await stop.json()) as { workers: Array<{ active: boolean; frames_written: number }> };
    expect(stopped.workers.map((w) => w.active)).toEqual([false, false]);
    for (const w of stopped.workers) expect(w.frames_written).toBeGreaterThan(0);
    expect(fs.readdirSync(captureDir).sort()).toEqual(['w0', 'w1']);
  } finally {
    await gw.stop();
  }
});
