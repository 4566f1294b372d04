#!/usr/bin/env node
/**
 * Prints the SQL classifier benchmark as JSON. Needs a build first (`npx tsc -p tsconfig.build.json`,
 * or PGWARD_DIST=<dir> pointing at another compile of gateway/src). The benchmark source is excluded
 * from the build, so it is transpiled here next to the compiled classifier.
 */
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- plain CommonJS script */
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const root = path.join(__dirname, '..');
const dist = path.resolve(process.env.PGWARD_DIST || path.join(root, 'dist'));
const source = path.join(root, 'gateway/src/sql/classify.bench.ts');
const target = path.join(dist, 'sql/classify.bench.js');

if (!fs.existsSync(path.join(dist, 'sql/cache.js'))) {
  console.error(`no compiled classifier in ${dist}/sql: run npx tsc -p tsconfig.build.json first`);
  process.exit(2);
}
const { outputText } = ts.transpileModule(fs.readFileSync(source, 'utf8'), {
  fileName: source,
  compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
});
fs.writeFileSync(target, outputText);
require(target)
  .runClassifyBench()
  .then(
    (result) => console.log(JSON.stringify(result)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
