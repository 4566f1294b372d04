#!/usr/bin/env node
// Median/p99 of policy evaluation with a bundle: node scripts/bench-eval.js [BUNDLE] [ITERATIONS]
// Uses dist/policy/eval.bench.js when it was compiled; otherwise transpiles the TypeScript sources
// in memory (tsconfig.build.json leaves *.bench.ts out of dist/).
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- a plain CommonJS script */
const fs = require('node:fs');
const path = require('node:path');

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
runEvalBench(bundle, iterations).then(
  (result) => console.log(JSON.stringify(result)),
  (err) => {
    console.error(`bench-eval: ${err && err.message ? err.message : err}`);
    process.exit(1);
  },
);
