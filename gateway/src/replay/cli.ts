/**
 * `pgward replay CAPTURE… --bundle B [--baseline B0] [--expect FILE] [--update-expect]
 * [--format text|json|junit] [--entrypoint E] [--server-port N]`: evaluates captured traffic
 * offline and reports what a bundle decides, and what changed. Exit codes: 0 no change, 1
 * changes, 2 error (bad arguments, unreadable capture or bundle).
 */
import fs from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { ErrorCodes, PgwardError } from '../errors';
import { buildEngineFromSource } from '../policy/opa-engine';
import type { PolicyEngine } from '../policy/types';
import { createClassifier, initSqlParser } from '../sql';
import { Replayer, type ReplayDecision } from './replay';
import { openCapture } from './read-capture';
import {
  checkExpectHeader,
  diffDecisions,
  groupChanges,
  groupDecisions,
  readExpectFile,
  toExpect,
  writeExpectFile,
  type Change,
  type ExpectEntry,
} from './diff';
import {
  countKinds,
  formatJson,
  formatJunit,
  formatText,
  Tally,
  type Comparison,
  type Report,
} from './report';

export type ReplayFormat = 'text' | 'json' | 'junit';

export interface ReplayOptions {
  captures: string[];
  bundle: string;
  baseline?: string;
  expect?: string;
  updateExpect?: boolean;
  entrypoint?: string;
  serverPort?: number;
  /** Progress on stderr: a bar on a terminal, else one line every progressIntervalMs. */
  progress?: boolean | 'lines';
  /** Default 10 s. */
  progressIntervalMs?: number;
  /** Where progress lines go (default process.stderr). */
  progressStream?: NodeJS.WritableStream;
  /** List the candidate's decisions, grouped (Report.decisions). */
  showDecisions?: boolean;
}

export interface ReplayRun {
  report: Report;
  /** The candidate bundle's decisions, in capture order. */
  decisions: ReplayDecision[];
  baselineDecisions: ReplayDecision[] | null;
  exitCode: 0 | 1;
}

/** Replays the captures; throws PgwardError (exit 2) on unreadable input. */
export async function runReplay(o: ReplayOptions): Promise<ReplayRun> {
  await initSqlParser();
  const entrypoint = o.entrypoint ?? 'pgward/decision';
  const engines: PolicyEngine[] = [await buildEngineFromSource(o.bundle, { entrypoint })];
  if (o.baseline !== undefined) engines.push(await buildEngineFromSource(o.baseline, { entrypoint }));
  const expected = o.expect !== undefined && !o.updateExpect ? readExpectFile(o.expect) : null;
  // Refuse to overwrite a file that is not an expectations file (any version may be rewritten).
  if (o.expect !== undefined && o.updateExpect && fs.existsSync(o.expect)) checkExpectHeader(o.expect);

  const { classify } = createClassifier({ maxEntries: 50_000 });
  const lanes: ReplayDecision[][] = engines.map(() => []);
  const tally = new Tally();
  const replayer = new Replayer(engines, {
    classify,
    onDecision: (lane, d) => {
      lanes[lane]!.push(d);
      if (lane === 0) tally.add(d);
    },
  });

  let bar: SingleBar | null = null;
  let ticker: NodeJS.Timeout | null = null;
  const total = o.captures.reduce((n, f) => n + (fs.existsSync(f) ? fs.statSync(f).size : 0), 0);
  const started = Date.now();
  if (o.progress === 'lines') {
    const stream = o.progressStream ?? process.stderr;
    ticker = setInterval(() => {
      const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
      stream.write(
        `pgward replay: ${pct}% (${mib(done)} of ${mib(total)} MiB), ${replayer.stats.frames} frames, ${tally.total.total} decisions, ${Math.round((Date.now() - started) / 1000)} s\n`,
      );
    }, o.progressIntervalMs ?? 10_000);
    ticker.unref();
  } else if (o.progress) {
    bar = new SingleBar({
      stream: process.stderr,
      format: 'replay [{bar}] {percentage}% | {value}/{total} bytes | {frames} frames',
      hideCursor: true,
    });
    bar.start(total, 0, { frames: 0 });
  }
  let done = 0;
  const warnings: string[] = [];
  const t0 = process.hrtime.bigint();
  try {
    for (const file of o.captures) {
      const src = await openCapture(file, {
        ...(o.serverPort !== undefined ? { serverPort: o.serverPort } : {}),
        onBytes: (n) => {
          done += n;
          bar?.update(done, { frames: replayer.stats.frames });
        },
      });
      warnings.push(...src.warnings.map((w) => `${src.name}: ${w}`));
      try {
        replayer.beginFile(src.name, src.header);
      } catch (err) {
        throw new PgwardError(ErrorCodes.REPLAY_INPUT, `${file}: ${(err as Error).message}`);
      }
      if (Symbol.asyncIterator in src.records) {
        for await (const rec of src.records) replayer.record(rec);
      } else {
        for (const rec of src.records) replayer.record(rec);
      }
    }
  } finally {
    bar?.stop();
    if (ticker) clearInterval(ticker);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const st = replayer.stats;
  const [candidate, baseline] = lanes as [ReplayDecision[], ReplayDecision[] | undefined];
  const comparisons: Comparison[] = [];
  const after = candidate.map(toExpect);
  const compare = (against: Comparison['against'], source: string, changes: Change[]): Comparison => ({
    against,
    source,
    compared: candidate.length,
    changed: changes.length,
    groups: groupChanges(changes),
    by_kind: countKinds(changes),
  });
  if (baseline !== undefined && o.baseline !== undefined)
    comparisons.push(compare('baseline', o.baseline, diffDecisions(baseline.map(toExpect), after)));
  if (expected !== null && o.expect !== undefined)
    comparisons.push(compare('expect', o.expect, diffDecisions(expected, after)));
  if (o.updateExpect && o.expect !== undefined) writeExpectFile(o.expect, after);
  const report: Report = {
    summary: {
      captures: o.captures,
      bundle: o.bundle,
      revision: engines[0]!.bundle()?.revision ?? '',
      records: st.records,
      frames: st.frames,
      connections: st.connections,
      decisions: tally.total,
      by_type: tally.byType,
      seconds,
      frames_per_second: seconds > 0 ? st.frames / seconds : 0,
      warnings: [
        ...warnings,
        ...st.warnings,
        ...(st.orphan_frames > 0
          ? [`${st.orphan_frames} frames of connections whose start is not in the captures were not judged`]
          : []),
      ],
    },
    comparisons,
    ...(o.showDecisions ? { decisions: groupDecisions(after) } : {}),
  };
  const changed = comparisons.some((c) => c.changed > 0);
  return { report, decisions: candidate, baselineDecisions: baseline ?? null, exitCode: changed ? 1 : 0 };
}

const mib = (n: number): string => (n / (1 << 20)).toFixed(1);

export function formatReport(r: Report, format: ReplayFormat): string {
  switch (format) {
    case 'json':
      return formatJson(r);
    case 'junit':
      return formatJunit(r);
    case 'text':
      return formatText(r);
  }
}

function buildCommand(): Command {
  return new Command('pgward replay')
    .description('evaluate captured traffic (pgward .jsonl captures, pcap, pcapng) offline against a bundle')
    .argument('<capture...>', 'capture files, in order (a rotated capture set: oldest first)')
    .requiredOption('--bundle <path>', 'candidate bundle (.tar.gz or directory)')
    .option('--baseline <path>', 'bundle to compare with (e.g. the production bundle)')
    .option('--expect <file>', 'expectations file to compare with')
    .option('--update-expect', 'rewrite the expectations file from this run', false)
    .addOption(
      new Option('--format <format>', 'report format').choices(['text', 'json', 'junit']).default('text'),
    )
    .option('--entrypoint <path>', 'decision entrypoint', 'pgward/decision')
    .option('--server-port <port>', 'PostgreSQL server port in packet captures', '5432')
    .option(
      '--show-decisions',
      'list what the candidate bundle decided, grouped (also without a baseline)',
      false,
    )
    .option('--no-progress', 'no progress (a bar on a terminal, else a line every 10 s on stderr)')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: (s) => process.stdout.write(s) });
}

interface CliOptions {
  bundle: string;
  baseline?: string;
  expect?: string;
  updateExpect: boolean;
  format: ReplayFormat;
  entrypoint: string;
  serverPort: string;
  progress: boolean;
  showDecisions: boolean;
}

export async function runReplayCli(args: string[]): Promise<number> {
  const cmd = buildCommand();
  let captures: string[];
  let o: CliOptions;
  try {
    cmd.parse(args, { from: 'user' });
    captures = cmd.processedArgs[0] as string[];
    o = cmd.opts<CliOptions>();
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0;
      process.stderr.write(`pgward replay: ${err.message.replace(/^error: /, '').split('\n')[0]}\n`);
      return 2;
    }
    throw err;
  }
  const port = Number(o.serverPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write(
      `pgward replay: --server-port expects a port from 1 to 65535, got "${o.serverPort}"\n`,
    );
    return 2;
  }
  if (o.updateExpect && o.expect === undefined) {
    process.stderr.write('pgward replay: --update-expect needs --expect FILE\n');
    return 2;
  }
  try {
    const run = await runReplay({
      captures,
      bundle: o.bundle,
      ...(o.baseline !== undefined ? { baseline: o.baseline } : {}),
      ...(o.expect !== undefined ? { expect: o.expect } : {}),
      updateExpect: o.updateExpect,
      entrypoint: o.entrypoint,
      serverPort: port,
      progress: !o.progress ? false : process.stderr.isTTY === true ? true : 'lines',
      showDecisions: o.showDecisions,
    });
    process.stdout.write(formatReport(run.report, o.format));
    if (o.updateExpect)
      process.stderr.write(`pgward replay: wrote ${run.decisions.length} expectations to ${o.expect}\n`);
    return o.updateExpect ? 0 : run.exitCode;
  } catch (err) {
    const msg = err instanceof PgwardError ? `${err.code}: ${err.message}` : (err as Error).message;
    process.stderr.write(`pgward replay: ${msg.split('\n')[0]}\n`);
    return 2;
  }
}

export type { ExpectEntry };
