/**
 * Session-core microbenchmark (not a jest test): pgbench-like request cycles through SessionCore in
 * process (no sockets), client bytes in and the server's answers back, in CPU time of this
 * process. Three shapes, as pgbench -S sends them: `simple` (one Query, its literal different in
 * every cycle, so the shape cache answers), `extended` (Parse '' / Bind / Describe / Execute /
 * Sync) and `prepared` (Bind / Describe / Execute / Sync of a named statement); Bind values differ
 * in every cycle. With a bundle the session judges with the real engine (OpaWasmEngine) and the
 * gateway's classifier, as `pgward serve` does; without one, with the test harness's rule engine.
 * Run each shape in its own process for numbers that compare (JIT and GC state carry over
 * between shapes): scripts/bench-core.js does.
 *
 * A hot loop flatters: under load the gateway shares its cores with the database and the clients,
 * and every read finds its code and data evicted from the core's caches. `cold` emulates that: the
 * cycles go round `sessions` sessions and `thrashKb` KiB of other memory are written after every
 * read (that writing's own time, taken around each write, is subtracted).
 */
import { encodeBind, encodeDescribe, encodeExecute, encodeParse, encodeQuery, encodeSync } from '../protocol';
import { initSqlParser, sessionClassifier } from '../sql';
import { loadBundle } from '../policy/bundle';
import { OpaWasmEngine } from '../policy/opa-engine';
import type { PolicyEngine } from '../policy/types';
import { Harness, pg } from './core-harness.test-helper';

export type CoreBenchShape = 'extended' | 'prepared' | 'simple';

const SELECT = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1';
/** Distinct client reads prepared in advance (cycled through). */
const VARIANTS = 4096;

function cycles(h: Harness, s: CoreBenchShape): { client: Buffer[]; server: Buffer } {
  const bind = (stmt: string, i: number): Buffer[] => [
    encodeBind('', stmt, [{ format: 0, value: Buffer.from(String(1 + ((i * 7919) % 1_000_000))) }]),
    encodeDescribe('P', ''),
    encodeExecute(''),
    encodeSync(),
  ];
  const rows = [pg.rowDescription(), pg.dataRow('0'), pg.complete('SELECT 1'), pg.ready()];
  const client: Buffer[] = [];
  for (let i = 0; i < VARIANTS; i++) {
    if (s === 'simple')
      client.push(
        encodeQuery(`SELECT abalance FROM pgbench_accounts WHERE aid = ${1 + ((i * 7919) % 1_000_000)};`),
      );
    else if (s === 'extended') client.push(Buffer.concat([encodeParse('', SELECT), ...bind('', i)]));
    else client.push(Buffer.concat(bind('P0_1', i)));
  }
  if (s === 'prepared') {
    h.client(encodeParse('P0_1', SELECT), encodeSync());
    h.server(pg.parseComplete(), pg.ready());
  }
  const server =
    s === 'simple'
      ? Buffer.concat(rows)
      : Buffer.concat([...(s === 'extended' ? [pg.parseComplete()] : []), pg.bindComplete(), ...rows]);
  return { client, server };
}

export interface CoreBenchResult {
  shape: CoreBenchShape;
  engine: string;
  /** The best round: CPU microseconds per request cycle, and cycles per CPU second. */
  us_per_cycle: number;
  cycles_per_cpu_second: number;
}

export interface ColdOptions {
  /** Sessions the cycles go round (default 1). */
  sessions: number;
  /** KiB of memory written after every read (default 0: a hot loop). */
  thrashKb: number;
}

/** The best of `rounds` runs of `n` cycles. `bundle`: judge with it (else the harness's rules). */
export async function runCoreBench(
  s: CoreBenchShape,
  rounds = 3,
  n = 20_000,
  bundle?: string,
  cold: ColdOptions = { sessions: 1, thrashKb: 0 },
): Promise<CoreBenchResult> {
  await initSqlParser();
  let engine: PolicyEngine | undefined;
  if (bundle !== undefined)
    engine = await OpaWasmEngine.create(await loadBundle(bundle), { entrypoint: 'pgward/decision' });
  const classify = sessionClassifier(10_000);
  const sessions = Math.max(1, cold.sessions);
  const thrash = Buffer.alloc(cold.thrashKb * 1024);
  let touching = 0; // ms spent writing the other memory (timed around each write)
  const touch = (): void => {
    const t = performance.now();
    for (let i = 0; i < thrash.length; i += 64) thrash[i] = (thrash[i] as number) + 1;
    touching += performance.now() - t;
  };
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const hs: Harness[] = [];
    let client: Buffer[] = [];
    let server: Buffer = Buffer.alloc(0);
    for (let k = 0; k < sessions; k++) {
      const h = new Harness(engine === undefined ? { classify } : { engine, classify });
      h.login();
      ({ client, server } = cycles(h, s));
      h.take();
      hs.push(h);
    }
    touching = 0;
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const h = hs[i % sessions] as Harness;
      const core = h.core;
      // Each read is a new Buffer, as a socket gives it (the session keeps views of it).
      core.clientData(Buffer.from(client[i & (VARIANTS - 1)] as Buffer));
      core.takeActions();
      if (thrash.length > 0) touch();
      core.serverData(server);
      core.takeActions();
      if (thrash.length > 0) touch();
      if ((i & 1023) === 0) {
        for (const x of hs) {
          x.engine.inputs.length = 0;
          x.decisions.length = 0;
        }
      }
    }
    const u = process.cpuUsage(t0);
    // µs: the loop's CPU without the writing to the other memory.
    const spent = u.user + u.system - touching * 1000;
    best = Math.min(best, spent / n);
  }
  return {
    shape: s,
    engine: bundle === undefined ? 'harness rules' : bundle,
    us_per_cycle: Math.round(best * 1000) / 1000,
    cycles_per_cpu_second: Math.round(1e6 / best),
  };
}
