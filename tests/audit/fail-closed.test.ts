/**
 * audit.fail_closed: what pgward cannot record, it denies. Statements that raise an alert
 * (sensitive tables) are refused while the audit file cannot be written, and allowed again when it can.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { ensureLocalTestDb } from '../helpers/cluster';

let db: string;
let gw: RunningGateway;
let dir: string;

beforeAll(async () => {
  db = (await ensureLocalTestDb()).database;
  const c = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: db });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS public.credit_cards (id int, number text)');
  await c.end();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-audit-fc-'));
  gw = await startGateway({
    config: { audit: { sink: 'file', file: { path: path.join(dir, 'audit.jsonl') }, fail_closed: true } },
  });
});

afterAll(async () => {
  await stopAllGateways();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function attempt(sql: string): Promise<{ ok: boolean; code?: string; message?: string }> {
  const c = new Client({ host: gw.host, port: gw.port, user: 'postgres', database: db });
  await c.connect();
  try {
    await c.query(sql);
    return { ok: true };
  } catch (e) {
    const err = e as { code?: string; message?: string };
    return {
      ok: false,
      ...(err.code ? { code: err.code } : {}),
      ...(err.message ? { message: err.message } : {}),
    };
  } finally {
    await c.end();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('alerted statements are denied while the audit sink fails, and allowed again after', async () => {
  const alerted = 'SELECT count(*) FROM public.credit_cards';
  expect(await attempt(alerted)).toEqual({ ok: true });
  const lines = fs.readFileSync(path.join(dir, 'audit.jsonl'), 'utf8').trim().split('\n');
  expect(JSON.parse(lines[lines.length - 1]!)).toMatchObject({ kind: 'alert', sql: alerted });

  fs.rmSync(dir, { recursive: true, force: true });
  await sleep(1200); // the sink notices a moved or deleted file within a second
  const denied = await attempt(alerted);
  expect(denied).toMatchObject({ ok: false, code: '42501' });
  expect(denied.message).toMatch(/audit log cannot record/);
  // Statements without an alert need no record and still run.
  expect(await attempt('SELECT 1')).toEqual({ ok: true });
  const metrics = await (await gw.admin('/metrics')).text();
  expect(metrics).toMatch(/pgward_audit_sink_errors_total [1-9]/);
  expect(metrics).toMatch(/pgward_errors_total\{code="PGWARD_ERR_AUDIT_SINK"\} [1-9]/);

  fs.mkdirSync(dir, { recursive: true });
  expect(await attempt(alerted)).toEqual({ ok: true });
});
