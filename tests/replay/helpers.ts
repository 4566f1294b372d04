/** Shared by the replay tests: a throwaway cluster with the scenario tables, and decision extraction. */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { startCluster, CLUSTER_DB, type Cluster } from '../helpers/cluster';
import { runPgbench } from '../helpers/psql';
import type { RunningGateway } from '../helpers/gateway';
import { SETUP_SQL } from './traffic';

export const CORPUS_DIR = path.join(__dirname, 'corpus');
export const CORPUS_EXPECT = path.join(CORPUS_DIR, 'expect.jsonl');

export async function startReplayCluster(): Promise<Cluster> {
  const cluster = await startCluster();
  const r = await runPgbench([
    '-i',
    '-q',
    '-s',
    '1',
    '-h',
    cluster.host,
    '-p',
    String(cluster.port),
    '-U',
    'postgres',
    CLUSTER_DB,
  ]);
  if (r.code !== 0) throw new Error(`pgbench -i failed: ${r.stderr}`);
  await resetTables(cluster);
  return cluster;
}

/** Recreates the scenario tables directly on the server (not through pgward). */
export async function resetTables(cluster: Cluster): Promise<void> {
  const c = new Client({ host: cluster.host, port: cluster.port, user: 'postgres', database: CLUSTER_DB });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(SETUP_SQL);
  } finally {
    await c.end();
  }
}

export interface Outcome {
  type: string;
  allow: boolean;
  reasons: string[];
  alerts: Array<{ rule: string; severity: string; message: string }>;
}

/** The gateway's own decision log (decision_log.enabled, stdout), per connection id, in order. */
export function liveDecisions(gw: RunningGateway): Map<string, Outcome[]> {
  const out = new Map<string, Outcome[]>();
  for (const l of gw.logs) {
    if (typeof l.decision_id !== 'string' || !l.result || !l.input) continue;
    const input = l.input as { message: { type: string } };
    // The session's id (the decision log's connection_id).
    const id = l.connection_id as string;
    const result = l.result as { allow: boolean; reasons: string[]; alerts: Outcome['alerts'] };
    const list = out.get(id) ?? [];
    list.push({
      type: input.message.type,
      allow: result.allow,
      reasons: result.reasons,
      alerts: result.alerts,
    });
    out.set(id, list);
  }
  return out;
}

export function captureFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .map((f) => path.join(dir, f));
}
