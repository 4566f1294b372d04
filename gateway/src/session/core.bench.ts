/**
 * Session-core microbenchmark (not a jest test): pgbench-like request cycles through SessionCore in
 * process (no sockets, the test harness's rule engine), client bytes in and the server's answers
 * back, counted per second of this process's CPU time. Three shapes: `extended` (Parse '' / Bind /
 * Describe / Execute / Sync, what pgbench -M extended sends), `prepared` (Bind / Describe /
 * Execute / Sync of a named statement) and `simple` (one Query). Run each shape in its own
 * process for numbers that compare (JIT and GC state carry over between shapes). After a build:
 * `node -e "require('./dist/session/core.bench').runCoreBench('simple').then(console.log)"`.
 */
import { encodeBind, encodeDescribe, encodeExecute, encodeParse, encodeQuery, encodeSync } from '../protocol';
import { initSqlParser } from '../sql';
import { Harness, pg } from './core-harness.test-helper';

export type CoreBenchShape = 'extended' | 'prepared' | 'simple';

const UPDATE = 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2';
const PARAMS = [
  { format: 0 as const, value: Buffer.from('42') },
  { format: 0 as const, value: Buffer.from('12345') },
];

function shape(h: Harness, s: CoreBenchShape): { client: Buffer; server: Buffer } {
  const bind = (stmt: string): Buffer[] => [
    encodeBind('', stmt, PARAMS),
    encodeDescribe('P', ''),
    encodeExecute(''),
    encodeSync(),
  ];
  const updated = [pg.bindComplete(), pg.noData(), pg.complete('UPDATE 1'), pg.ready()];
  switch (s) {
    case 'extended':
      return {
        client: Buffer.concat([encodeParse('', UPDATE), ...bind('')]),
        server: Buffer.concat([pg.parseComplete(), ...updated]),
      };
    case 'prepared':
      h.client(encodeParse('s1', UPDATE), encodeSync());
      h.server(pg.parseComplete(), pg.ready());
      return { client: Buffer.concat(bind('s1')), server: Buffer.concat(updated) };
    case 'simple':
      return {
        client: encodeQuery('SELECT abalance FROM pgbench_accounts WHERE aid = 12345'),
        server: Buffer.concat([pg.rowDescription(), pg.dataRow('0'), pg.complete('SELECT 1'), pg.ready()]),
      };
  }
}

/** The best of `rounds` runs of `cycles` cycles: cycles per CPU second. */
export async function runCoreBench(
  s: CoreBenchShape,
  rounds = 3,
  cycles = 20_000,
): Promise<{ shape: CoreBenchShape; cycles_per_cpu_second: number }> {
  await initSqlParser();
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const h = new Harness();
    h.login();
    const { client, server } = shape(h, s);
    h.take();
    const core = h.core;
    const t0 = process.cpuUsage();
    for (let i = 0; i < cycles; i++) {
      core.clientData(client);
      core.takeActions();
      core.serverData(server);
      core.takeActions();
      if ((i & 1023) === 0) {
        h.engine.inputs.length = 0;
        h.decisions.length = 0;
      }
    }
    const u = process.cpuUsage(t0);
    best = Math.max(best, Math.round(cycles / ((u.user + u.system) / 1e6)));
  }
  return { shape: s, cycles_per_cpu_second: best };
}
