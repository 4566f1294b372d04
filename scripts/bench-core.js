#!/usr/bin/env node
// Session-core micro-benchmark (gateway/src/session/core.bench.ts), after `make build`:
//   node scripts/bench-core.js [BUNDLE] [CYCLES]
// pgbench-like request cycles (simple, extended, prepared) through SessionCore in process, judged
// with BUNDLE (default wasm-build/out/bundle.tar.gz, the shipped policies) by the real engine and
// classifier; each shape in its own process, best of 5 rounds of CYCLES (default 50000). The CPU
// cost of pgward's own per-transaction work without sockets, steadier than the pgbench figures on
// a shared machine. The last line of stdout is one JSON object.
// BENCH_CORE_SESSIONS=N and BENCH_CORE_THRASH_KB=K: the cycles go round N sessions and K KiB of other
// memory are written after every read (core.bench.ts: caches as cold as under load; for example
// 8 and 256).
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- a plain CommonJS script */
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const [shapeArg] = process.argv.slice(4);
const bundle = path.resolve(process.argv[2] || path.join(root, 'wasm-build/out/bundle.tar.gz'));
const n = Number(process.argv[3] || 50000);
if (!Number.isInteger(n) || n < 1) {
  console.error(`bench-core: CYCLES must be a positive integer, not ${process.argv[3]}`);
  process.exit(2);
}

const cold = {
  sessions: Number(process.env.BENCH_CORE_SESSIONS || 1),
  thrashKb: Number(process.env.BENCH_CORE_THRASH_KB || 0),
};
if (
  !Number.isInteger(cold.sessions) ||
  cold.sessions < 1 ||
  !Number.isInteger(cold.thrashKb) ||
  cold.thrashKb < 0
) {
  console.error(
    'bench-core: BENCH_CORE_SESSIONS must be a positive integer, BENCH_CORE_THRASH_KB a non-negative one',
  );
  process.exit(2);
}

if (shapeArg) {
  // One shape, in this process.
  const { runCoreBench } = require(path.join(root, 'dist/session/core.bench.js'));
  runCoreBench(shapeArg, 5, n, bundle, cold).then(
    (r) => console.log(JSON.stringify(r)),
    (err) => {
      console.error(`bench-core: ${err.message || err}`);
      process.exit(1);
    },
  );
} else {
  const out = {
    benchmark: 'session core',
    bundle,
    cycles: n,
    sessions: cold.sessions,
    thrash_kb: cold.thrashKb,
  };
  for (const shape of ['simple', 'extended', 'prepared']) {
    const line = execFileSync(process.execPath, [__filename, bundle, String(n), shape], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop();
    const r = JSON.parse(line);
    out[shape] = { us_per_cycle: r.us_per_cycle, cycles_per_cpu_second: r.cycles_per_cpu_second };
    console.log(`${shape.padEnd(9)} ${r.us_per_cycle} µs CPU per cycle`);
  }
  console.log(JSON.stringify(out));
}
