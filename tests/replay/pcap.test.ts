/**
 * A pcap recorded by tcpdump on loopback (psql and node-postgres talking directly to a throwaway
 * cluster) replays to the same decisions as the same traffic captured by pgward.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stopAllClusters, CLUSTER_DB, type Cluster } from '../helpers/cluster';
import { SHIPPED_BUNDLE, startGateway, stopAllGateways } from '../helpers/gateway';
import { runReplay } from '../../gateway/src/replay/cli';
import type { ReplayDecision } from '../../gateway/src/replay/replay';
import { ormApp, psqlAdmin, type Target } from './traffic';
import { captureFiles, resetTables, startReplayCluster } from './helpers';

jest.setTimeout(180_000);

let cluster: Cluster;
let tmp = '';

beforeAll(async () => {
  cluster = await startReplayCluster();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-replay-pcap-'));
});

afterAll(async () => {
  await stopAllGateways();
  await stopAllClusters();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function traffic(t: Target): Promise<void> {
  await psqlAdmin(t);
  await ormApp(t);
}

/** Decisions per connection, connections in the order they started, without ids or ports. */
function shape(ds: readonly ReplayDecision[]): unknown[] {
  const conns = new Map<string, unknown[]>();
  for (const d of ds) {
    const list = conns.get(d.conn) ?? [];
    // psql's \d queries name the table by OID, which differs between the two runs (tables recreated).
    const sql = d.sql === null ? null : d.sql.replace(/'\d+'/g, "'<oid>'");
    list.push({ type: d.type, user: d.user, sql, allow: d.allow, reasons: d.reasons, alerts: d.alerts });
    conns.set(d.conn, list);
  }
  return [...conns.values()];
}

async function tcpdump(file: string, port: number): Promise<() => Promise<void>> {
  const p = spawn(
    'tcpdump',
    ['-i', 'lo', '-U', '-s', '0', '-Z', 'root', '-w', file, 'tcp', 'port', String(port)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
    p.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('listening on')) {
        clearTimeout(t);
        // The message comes before the capture is fully armed on a busy machine.
        setTimeout(resolve, 1000);
      }
    });
    p.once('exit', (code) => reject(new Error(`tcpdump exited with ${code}: ${err}`)));
  });
  return async () => {
    await new Promise((r) => setTimeout(r, 1000));
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGINT');
    await exited;
  };
}

test('tcpdump capture of direct traffic = pgward capture of the same traffic', async () => {
  const pcap = path.join(tmp, 'direct.pcap');
  const stop = await tcpdump(pcap, cluster.port);
  await traffic({ host: cluster.host, port: cluster.port, database: CLUSTER_DB });
  await stop();

  await resetTables(cluster);
  const dir = path.join(tmp, 'pgward');
  const gw = await startGateway({
    upstream: `${cluster.host}:${cluster.port}`,
    // Unredacted, like the packet capture it is compared with (the default redacts literals and values).
    config: {
      capture: { enabled: true, dir, redact: { literals: false, parameters: false } },
      audit: { sink: 'none' },
    },
  });
  await traffic({ host: gw.host, port: gw.port, database: CLUSTER_DB });
  await gw.stop();

  const fromPcap = await runReplay({ captures: [pcap], bundle: SHIPPED_BUNDLE, serverPort: cluster.port });
  const fromPgward = await runReplay({ captures: captureFiles(dir), bundle: SHIPPED_BUNDLE });
  expect(fromPcap.report.summary.warnings).toEqual([]);
  expect(fromPcap.report.summary.connections).toBe(3);
  expect(fromPcap.decisions.length).toBeGreaterThan(50);
  expect(shape(fromPcap.decisions)).toEqual(shape(fromPgward.decisions));
});
