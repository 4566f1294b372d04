#!/usr/bin/env node
// Policy evaluation micro-benchmark (gateway/src/policy/eval.bench.ts):
//   node scripts/bench-eval.js [BUNDLE] [ITERATIONS] [BASELINE_BUNDLE]
// BUNDLE defaults to wasm-build/out/bundle.tar.gz, ITERATIONS to 20000 per path. BASELINE_BUNDLE
// (default: tests/fixtures/bundles/allow-all, built into a temporary file; "none" skips it) runs
// the same uncached mix to show the SDK's fixed cost. Reports the uncached path (every document
// unique, the engine's decision cache never hits) and the cached path, median and p99, overall
// and per input; the last line of stdout is one JSON object.
// Uses dist/policy/eval.bench.js when it was compiled; otherwise transpiles the TypeScript sources
// in memory (tsconfig.build.json leaves *.bench.ts out of dist/).
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- a plain CommonJS script */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const compiled = path.join(root, 'dist/policy/eval.bench.js');
let entry = compiled;
if (!fs.existsSync(compiled)) {
  const ts = require('typescript');
  require.extensions['.ts'] = (module, filename) => {
    const source = fs.readFileSync(filename, 'utf8');
    const out = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
      fileName: filename,
    });
    module._compile(out.outputText, filename);
  };
  entry = path.join(root, 'gateway/src/policy/eval.bench.ts');
}
const { runEvalBench } = require(entry);
const bundle = path.resolve(process.argv[2] || path.join(root, 'wasm-build/out/bundle.tar.gz'));
const iterations = Number(process.argv[3] || 20000);
if (!Number.isInteger(iterations) || iterations < 1) {
  console.error(`bench-eval: ITERATIONS must be a positive integer, not ${process.argv[3]}`);
  process.exit(2);
}

/** The baseline bundle's path, or null (skipped, or the allow-all fixture could not be built). */
function baseline(tmp) {
  const arg = process.argv[4];
  if (arg === 'none') return null;
  if (arg) return path.resolve(arg);
  const out = path.join(tmp, 'allow-all.tar.gz');
  try {
    execFileSync(
      path.join(root, 'scripts/build-policy.sh'),
      [path.join(root, 'tests/fixtures/bundles/allow-all'), out],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, PGWARD_POLICY_REVISION: 'bench-allow-all' },
      },
    );
    return out;
  } catch (err) {
    console.error(
      `bench-eval: no baseline (building the allow-all fixture failed: ${String(err.message || err).split('\n')[0]})`,
    );
    return null;
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-bench-eval-'));
const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true });
runEvalBench(bundle, iterations, baseline(tmp)).then(
  (result) => {
    cleanup();
    const pad = (s, n) => String(s).padEnd(n);
    console.log(
      `${pad('input', 26)}${pad('bytes', 7)}${pad('allow', 7)}${pad('uncached p50', 14)}${pad('p99', 9)}${pad('cached p50', 12)}baseline p50 (µs)`,
    );
    for (const r of result.by_input) {
      console.log(
        `${pad(r.input, 26)}${pad(r.bytes, 7)}${pad(r.allow, 7)}${pad(r.uncached_median_us, 14)}${pad(r.uncached_p99_us, 9)}${pad(r.cached_median_us, 12)}${r.baseline_median_us ?? '-'}`,
      );
    }
    const b = result.baseline;
    console.log(
      `overall uncached p50 ${result.uncached.median_us} µs p99 ${result.uncached.p99_us} µs; cached p50 ${result.cached.median_us} µs p99 ${result.cached.p99_us} µs` +
        (b ? `; baseline (allow-all) uncached p50 ${b.median_us} µs p99 ${b.p99_us} µs` : '') +
        `; target p50 <= ${result.target_median_us} µs: ${result.meets_target ? 'met' : 'not met'}`,
    );
    console.log(JSON.stringify(result));
  },
  (err) => {
    cleanup();
    console.error(`bench-eval: ${err && err.message ? err.message : err}`);
    process.exit(1);
  },
);
