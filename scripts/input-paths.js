#!/usr/bin/env node
// Prints the input paths (JSON) that the Rego modules given as `opa parse --format json` outputs
// (file arguments) can read: gateway/src/policy/input-paths.ts, loaded from its TypeScript source
// with the typescript compiler's transpileModule, so it runs without the compiled gateway (make
// policy does not build it). Used by scripts/build-policy.sh.
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- a plain CommonJS script */
const fs = require('fs');
const path = require('path');
const Module = require('module');
const ts = require('typescript');

const src = path.join(__dirname, '..', 'gateway', 'src', 'policy', 'input-paths.ts');
const js = ts.transpileModule(fs.readFileSync(src, 'utf8'), {
  compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  fileName: src,
}).outputText;
const m = new Module(src);
m.filename = src;
m._compile(js, src);
const modules = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
process.stdout.write(JSON.stringify(m.exports.inputPathsOfModules(modules)));
