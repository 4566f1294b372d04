#!/usr/bin/env node
/**
 * Runs the GitHub Actions pipeline documented in docs/policy-ci.md, exactly as written there, on
 * this working tree, so the document cannot rot: the YAML block after `<!-- policy-ci:pipeline -->`
 * is parsed, the `uses:` steps are checked against what this machine provides (Node.js major
 * version, the Go of wasm-build/go.mod) or skipped when they only report, and every `run:` step
 * runs in order with `bash --noprofile --norc -eo pipefail` (the shell GitHub uses) and the job's
 * and step's env. `${{ … }}` expressions are resolved from a small table; an unknown one fails.
 * The document must also name the OPA version pinned in wasm-build/go.mod.
 *
 *   node tests/policy-ci/run-pipeline.mjs [docs/policy-ci.md]
 *
 * Exit 0 when every step succeeded; 1 with the failing step's name otherwise.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOC = path.resolve(process.argv[2] ?? path.join(ROOT, 'docs/policy-ci.md'));
const MARKER = '<!-- policy-ci:pipeline -->';

function fail(msg) {
  console.error(`policy-ci: FAIL: ${msg}`);
  process.exit(1);
}
const say = (msg) => console.log(`policy-ci: ${msg}`);

const text = fs.readFileSync(DOC, 'utf8');
const at = text.indexOf(MARKER);
if (at < 0) fail(`${DOC} has no ${MARKER} marker`);
const block = /^```yaml\n([\s\S]*?)^```$/m.exec(text.slice(at + MARKER.length));
if (!block) fail(`no \`\`\`yaml block after ${MARKER} in ${DOC}`);
const workflow = YAML.parse(block[1]);
const jobs = Object.entries(workflow?.jobs ?? {});
if (jobs.length !== 1) fail(`expected exactly one job, found ${jobs.length}`);
const [jobName, job] = jobs[0];

// The pinned OPA: the document must name the version wasm-build/go.mod pins.
const gomod = fs.readFileSync(path.join(ROOT, 'wasm-build/go.mod'), 'utf8');
const opaPin = /github\.com\/open-policy-agent\/opa (v[0-9][^\s]*)/.exec(gomod)?.[1];
if (!opaPin) fail('wasm-build/go.mod pins no github.com/open-policy-agent/opa version');
if (!text.includes(`github.com/open-policy-agent/opa ${opaPin}`))
  fail(
    `${path.relative(ROOT, DOC)} does not name the pinned OPA (github.com/open-policy-agent/opa ${opaPin})`,
  );
const goPin = /^go (\d+\.\d+)/m.exec(gomod)?.[1];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-policy-ci-'));
const summary = path.join(tmp, 'step-summary.md');
const output = path.join(tmp, 'output');
fs.writeFileSync(summary, '');
fs.writeFileSync(output, '');
const head = execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
const runnerTemp = path.join(tmp, 'runner');
fs.mkdirSync(runnerTemp);

/** The expressions the documented pipeline may use, and what they are in this local run. */
const EXPRESSIONS = {
  'github.sha': head,
  'github.event.pull_request.base.sha || github.sha': head,
  'github.event.pull_request.base.sha': head,
  'runner.temp': runnerTemp,
};
function resolve(value, where) {
  return String(value).replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, expr) => {
    if (!(expr in EXPRESSIONS)) fail(`${where}: unknown expression \${{ ${expr} }}`);
    return EXPRESSIONS[expr];
  });
}

const baseEnv = {
  ...process.env,
  CI: 'true',
  GITHUB_ACTIONS: 'true',
  GITHUB_SHA: head,
  GITHUB_WORKSPACE: ROOT,
  GITHUB_STEP_SUMMARY: summary,
  GITHUB_OUTPUT: output,
  RUNNER_TEMP: runnerTemp,
};
for (const [k, v] of Object.entries(job.env ?? {})) baseEnv[k] = resolve(v, `jobs.${jobName}.env.${k}`);

/** `uses:` steps: what they would set up must be here already; reporting actions are skipped. */
function checkUses(step) {
  const [action] = String(step.uses).split('@');
  const w = step.with ?? {};
  switch (action) {
    case 'actions/checkout':
      return 'the working tree is the checkout';
    case 'actions/setup-node': {
      const want = String(w['node-version']);
      const have = process.versions.node.split('.')[0];
      if (have !== want) fail(`setup-node wants Node.js ${want}, this is ${process.versions.node}`);
      return `Node.js ${process.versions.node}`;
    }
    case 'actions/setup-go': {
      if (w['go-version-file'] !== 'wasm-build/go.mod')
        fail('setup-go must take the Go version from wasm-build/go.mod');
      const v = execFileSync('go', ['version'], { encoding: 'utf8', env: baseEnv }).trim();
      const m = /go(\d+\.\d+)/.exec(v);
      const [maj, min] = (m?.[1] ?? '0.0').split('.').map(Number);
      const [wmaj, wmin] = (goPin ?? '0.0').split('.').map(Number);
      if (maj < wmaj || (maj === wmaj && min < wmin)) fail(`wasm-build/go.mod needs go ${goPin}; found ${v}`);
      return v;
    }
    case 'mikepenz/action-junit-report':
    case 'actions/upload-artifact':
      return null;
    default:
      fail(`step uses ${step.uses}, which this runner does not know`);
  }
}

baseEnv.PATH = `/usr/local/go/bin:${baseEnv.PATH ?? ''}`;
const steps = job.steps ?? [];
let ran = 0;
const t0 = Date.now();
for (const [i, step] of steps.entries()) {
  const name = step.name ?? step.uses ?? `step ${i + 1}`;
  if (step.uses !== undefined) {
    const what = checkUses(step);
    say(what === null ? `skip  ${name} (reporting only)` : `check ${name}: ${what}`);
    continue;
  }
  if (typeof step.run !== 'string') fail(`${name}: neither uses nor run`);
  if (step.run.includes('${{')) fail(`${name}: keep \${{ }} expressions out of run: (use env)`);
  const env = { ...baseEnv };
  for (const [k, v] of Object.entries(step.env ?? {})) env[k] = resolve(v, `${name}.env.${k}`);
  say(`run   ${name}`);
  const t = Date.now();
  const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', step.run], {
    cwd: ROOT,
    env,
    stdio: 'inherit',
  });
  if (r.status !== 0) fail(`step "${name}" exited with ${r.status ?? r.signal}`);
  say(`ok    ${name} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  ran++;
}
if (ran === 0) fail('the pipeline has no run: steps');
const junit = path.join(baseEnv.OUT ?? runnerTemp, 'replay-junit.xml');
if (baseEnv.OUT && !fs.existsSync(junit)) fail(`the pipeline wrote no ${junit}`);
say(
  `pipeline green: ${ran} steps in ${((Date.now() - t0) / 1000).toFixed(1)} s; step summary ${fs.statSync(summary).size} bytes`,
);
fs.rmSync(tmp, { recursive: true, force: true });
