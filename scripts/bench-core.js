#!/usr/bin/env node
// Session-core micro-benchmark (gateway/src/session/core.bench.ts), after `make build`:
//   node scripts/bench-core.js [BUNDLE] [CYCLES]
// pgbench-like request cycles (simple, extended, prepared) through SessionCore in process, judged
// with BUNDLE (default wasm-build/out/bundle.tar.gz, the shipped policies) by the real engine and
// classifier; each shape in its own process, best of 5 rounds of CYCLES (default 50000). The CPU
// cost of pgward's own per-transaction work without sockets, steadier than the pgbench figures on
// a shared machine. The last line of stdout is one JSON object.
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

if (shapeArg) {
  // One shape, in this process.
  const { runCoreBench } = require(path.join(root, 'dist/session/core.bench.js'));
  runCoreBench(shapeArg, 5, n, bundle).then(
    (r) => console.log(JSON.stringify(r)),
    (err) => {
      console.error(`bench-core: ${err.message || err}`);
      process.exit(1);
    },
  );
} else {
  const out = { benchmark: 'session core', bundle, cycles: n };
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
