#!/usr/bin/env node
/**
 * Compares two `go test -json` streams of the same suite (directly against PostgreSQL, and through
 * pgward) test by test: every test (and subtest) name must end with the same action (pass, fail or
 * skip) in both. Prints totals, the tests that fail directly too (not pgward's doing, listed), and
 * for every difference the test's output in both runs. Exit 0 when the results are the same, 1 when
 * they differ, 2 on bad input (a stream with no test results, e.g. a build failure).
 *
 *   driver-suite-compare.js [--name LABEL] [--differing-out FILE] [--rerun DIRECT2.json PGWARD2.json]
 *                           DIRECT.json PGWARD.json
 *
 * --differing-out writes the top-level tests that differ, one "package<TAB>Test" a line, for the
 * harness to run again. --rerun gives the results of that second attempt (both ways): a test whose
 * results agree there is reported as flaky (timing-sensitive upstream tests on a loaded machine, e.g.
 * a 50 ms context deadline) and not counted; a difference must show in both attempts to count.
 */
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- plain CommonJS script */
const fs = require('node:fs');

/**
 * Subtest names built from t.TempDir() paths (e.g. pgx's TestParseConfigSSLCertMode/servicefile=
 * '/tmp/TestParseConfigSSLCertMode3775027728/001/pg_service.conf') differ from run to run: the
 * random part of the directory is replaced so both runs name the test alike.
 */
function stableName(test) {
  return test.replace(/(\/[A-Za-z0-9_]+?)\d{6,}(\/\d{3}\/)/g, '$1*$2');
}

/**
 * Final action and output lines per "package/Test/sub". The harness runs each top-level test in its
 * own process labelled "package:Test"; that process's own outcome (e.g. the suite's TestMain failing
 * on a connection left open, or a panic) is kept as "package:Test (process)" and compared too.
 */
function readRun(file) {
  const tests = new Map();
  const output = new Map();
  /** key -> { pkg, top } (top: the top-level test; null for a whole package's own outcome) */
  const meta = new Map();
  let bad = 0;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let ev;
    try {
      ev = JSON.parse(line);
    } catch {
      bad++;
      continue;
    }
    if (!ev.Package) continue;
    const pkg = ev.Package.split(':')[0];
    const key = ev.Test ? `${pkg}/${stableName(ev.Test)}` : `${ev.Package} (process)`;
    if (!meta.has(key)) {
      const top = ev.Test ? ev.Test.split('/')[0] : (ev.Package.split(':')[1] ?? null);
      meta.set(key, { pkg, top });
    }
    if (ev.Action === 'output') {
      if (!output.has(key)) output.set(key, []);
      output.get(key).push(ev.Output);
    } else if (ev.Action === 'pass' || ev.Action === 'fail' || ev.Action === 'skip') {
      tests.set(key, ev.Action);
    } else if (ev.Action === 'run' && key && !tests.has(key)) {
      // A test that started but never ended (a panic or timeout ended the binary) counts as failed.
      tests.set(key, 'fail');
    }
  }
  // lib/pq's TestMain fails the process when a backend with application_name=pqgo is still in
  // pg_stat_activity after the tests: that check races the backend's own exit after Terminate
  // (seen directly too), so a process whose tests all passed and whose only complaint is that is
  // counted as passed and listed apart.
  const raced = [];
  for (const [key, action] of tests) {
    if (!key.endsWith(' (process)') || action !== 'fail') continue;
    const text = (output.get(key) ?? []).join('');
    const prefix = key.slice(0, -' (process)'.length).replace(':', '/');
    const testsOk = [...tests].every(
      ([k, a]) => !(k === prefix || k.startsWith(`${prefix}/`)) || a !== 'fail',
    );
    if (testsOk && /connection still active/.test(text)) {
      tests.set(key, 'pass');
      raced.push(key);
    }
  }
  return { tests, output, meta, bad, raced };
}

function count(tests) {
  const c = { pass: 0, fail: 0, skip: 0 };
  for (const a of tests.values()) c[a]++;
  return c;
}

function tail(lines, n) {
  const text = (lines ?? []).join('');
  const ls = text.split('\n').filter((l) => !/^(=== (RUN|PAUSE|CONT)|--- (PASS|FAIL|SKIP))/.test(l.trim()));
  return ls.slice(-n).join('\n');
}

function parseArgs(argv) {
  const a = { name: 'suite', differingOut: null, rerun: null, results: null, files: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--name') a.name = argv[++i];
    else if (argv[i] === '--differing-out') a.differingOut = argv[++i];
    else if (argv[i] === '--rerun') a.rerun = [argv[++i], argv[++i]];
    else if (argv[i] === '--results') a.results = argv[++i];
    else a.files.push(argv[i]);
  }
  return a;
}

/** Keys whose final action differs between the two runs, sorted. */
function differing(direct, gw) {
  const names = new Set([...direct.tests.keys(), ...gw.tests.keys()]);
  return [...names].filter((k) => direct.tests.get(k) !== gw.tests.get(k)).sort();
}

function main(argv) {
  const args = parseArgs(argv);
  const name = args.name;
  if (args.files.length !== 2) {
    console.error(
      'usage: driver-suite-compare.js [--name LABEL] [--differing-out FILE] [--rerun D2 P2] [--results FILE] DIRECT.json PGWARD.json',
    );
    return 2;
  }
  const direct = readRun(args.files[0]);
  const gw = readRun(args.files[1]);
  for (const [label, run] of [
    ['direct', direct],
    ['pgward', gw],
  ]) {
    if (run.tests.size === 0) {
      console.error(`${name}: the ${label} run has no test results (build failure?)`);
      return 2;
    }
  }
  const dc = count(direct.tests);
  const gc = count(gw.tests);
  console.log(`${name}: ${direct.tests.size} tests directly, ${gw.tests.size} through pgward`);
  console.log(`  direct: ${dc.pass} pass, ${dc.fail} fail, ${dc.skip} skip`);
  console.log(`  pgward: ${gc.pass} pass, ${gc.fail} fail, ${gc.skip} skip`);

  const failDirect = [...direct.tests].filter(([, a]) => a === 'fail').map(([k]) => k);
  if (failDirect.length) {
    console.log(`  failing directly too (not pgward's doing): ${failDirect.length}`);
    for (const k of failDirect) console.log(`    ${k}`);
  }
  for (const [label, run] of [
    ['direct', direct],
    ['pgward', gw],
  ]) {
    if (run.raced.length)
      console.log(
        `  ${label}: leak check raced a backend's exit (counted as passed): ${run.raced.join(', ')}`,
      );
  }

  const metaOf = (k) => gw.meta.get(k) ?? direct.meta.get(k) ?? { pkg: '', top: null };
  let keys = differing(direct, gw);
  // A whole package's own outcome (go test per package) follows its tests: when some test of the
  // package differs, that test is the difference; the package line alone is not another one.
  const testPkgs = new Set(keys.filter((k) => metaOf(k).top !== null).map((k) => metaOf(k).pkg));
  keys = keys.filter((k) => metaOf(k).top !== null || !testPkgs.has(metaOf(k).pkg));

  if (args.differingOut) {
    const tops = new Set(
      keys.filter((k) => metaOf(k).top !== null).map((k) => `${metaOf(k).pkg}\t${metaOf(k).top}`),
    );
    fs.writeFileSync(args.differingOut, [...tops].sort().join('\n') + (tops.size ? '\n' : ''));
  }

  let flaky = [];
  let rerun = null;
  if (args.rerun) {
    rerun = { direct: readRun(args.rerun[0]), gw: readRun(args.rerun[1]) };
    const agreed = (k) => {
      const d2 = rerun.direct.tests.get(k);
      return d2 !== undefined && d2 === rerun.gw.tests.get(k);
    };
    flaky = keys.filter(agreed);
    keys = keys.filter((k) => !agreed(k));
    if (flaky.length) {
      console.log(`  flaky (differed once, agreed when run again both ways; not counted): ${flaky.length}`);
      for (const k of flaky)
        console.log(`    ${k}: first direct ${direct.tests.get(k)}, pgward ${gw.tests.get(k)}`);
    }
  }

  if (args.results) {
    // For make test's closing line (scripts/test-summary.js): the tests that ran through pgward,
    // less those failing directly too (the environment's, not pgward's), and the real differences.
    const bothFail = failDirect.filter((k) => gw.tests.get(k) === 'fail').length;
    fs.writeFileSync(
      args.results,
      JSON.stringify({
        suite: name,
        passed: gc.pass,
        failed: keys.length,
        skipped: gc.skip,
        failingDirectlyToo: bothFail,
      }) + '\n',
    );
  }
  if (keys.length === 0) {
    console.log(`  same results directly and through pgward`);
    return 0;
  }
  console.log(`  DIFFERENT through pgward: ${keys.length}`);
  for (const k of keys)
    console.log(`    ${k}: direct ${direct.tests.get(k) ?? 'absent'}, pgward ${gw.tests.get(k) ?? 'absent'}`);
  for (const k of keys) {
    console.log(
      `\n--- ${k} (direct ${direct.tests.get(k) ?? 'absent'}, pgward ${gw.tests.get(k) ?? 'absent'})`,
    );
    console.log(`  pgward output:\n${indent(tail(gw.output.get(k), 15))}`);
    if (direct.tests.get(k) === 'fail')
      console.log(`  direct output:\n${indent(tail(direct.output.get(k), 8))}`);
    if (rerun) {
      const d2 = rerun.direct.tests.get(k) ?? 'not run';
      const g2 = rerun.gw.tests.get(k) ?? 'not run';
      console.log(`  run again: direct ${d2}, pgward ${g2}`);
    }
  }
  return 1;
}

function indent(s) {
  return s
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

process.exitCode = main(process.argv.slice(2));
