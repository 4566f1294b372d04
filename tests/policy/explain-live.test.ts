/**
 * `pgward explain` and the live gateway return the same decision (issue 11 item 2) for the shipped
 * rules and every cookbook rule: the rego blocks of docs/policy-cookbook.md are copied word for
 * word beside the shipped rego/ (plus one rule reading Bind values), built with `pgward build`,
 * and each case runs through `dist/cli.js explain` and through node-postgres against a gateway
 * started on that bundle; the live decision is read from its decision log.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI, gatewayRuntime, REPO, startGateway, type RunningGateway } from '../helpers/gateway';
import { pgClient } from '../helpers/pg-clients';
import { ensureRoles } from './policy-helpers';

const execFileP = promisify(execFile);

interface Case {
  name: string;
  user: string;
  /** Unique per case but for payroll-svc: how the live decision is found in the decision log. */
  app: string;
  startup?: boolean;
  sql?: string;
  /** A Bind of `sql` with these text values (explain: --input). */
  bind?: string[];
  /** Expected decision, so that a case that silently changed meaning is seen. */
  allow: boolean;
}

const CASES: Case[] = [
  { name: 'plain select', user: 'postgres', app: 'h3-plain', sql: 'SELECT 1', allow: true },
  { name: 'cookbook: no comments', user: 'postgres', app: 'h3-comment', sql: 'SELECT 1 -- hi', allow: false },
  {
    name: 'shipped: read-only user writes',
    user: 'readonly',
    app: 'h3-ro',
    sql: 'DELETE FROM t',
    allow: false,
  },
  { name: 'shipped: LOAD', user: 'postgres', app: 'h3-load', sql: "LOAD 'auto_explain'", allow: false },
  { name: 'shipped: blocked user', user: 'mallory', app: 'h3-mallory', startup: true, allow: false },
  {
    name: 'shipped: sensitive read alerts',
    user: 'postgres',
    app: 'h3-users',
    // Not `*`: the cookbook's column rule denies reading users.ssn through a star.
    sql: 'SELECT id FROM users',
    allow: true,
  },
  {
    name: 'cookbook: users.ssn through a star',
    user: 'postgres',
    app: 'h3-users-star',
    sql: 'SELECT * FROM users',
    allow: false,
  },
  {
    name: 'cookbook: payroll denied',
    user: 'postgres',
    app: 'h3-payroll',
    sql: 'SELECT * FROM payroll',
    allow: false,
  },
  {
    name: 'cookbook: payroll allowed',
    user: 'postgres',
    app: 'payroll-svc',
    sql: 'SELECT * FROM payroll',
    allow: true,
  },
  { name: 'cookbook: client certificate', user: 'deploy', app: 'h3-deploy', startup: true, allow: false },
  {
    name: 'test rule: a bound value',
    user: 'postgres',
    app: 'h3-bind',
    sql: 'SELECT $1::text',
    bind: ['s3cret'],
    allow: false,
  },
  {
    name: 'a bound value allowed',
    user: 'postgres',
    app: 'h3-bind-ok',
    sql: 'SELECT $1::text',
    bind: ['x'],
    allow: true,
  },
];

/** Outside Sunday 02:00–04:00 UTC the cookbook's maintenance-window rule denies DDL. */
const inWindow = (d: Date) => d.getUTCDay() === 0 && d.getUTCHours() >= 2 && d.getUTCHours() < 4;
CASES.push({
  name: 'cookbook: maintenance window',
  user: 'postgres',
  app: 'h3-ddl',
  sql: 'CREATE TEMPORARY TABLE h3_window (a int)',
  allow: inWindow(new Date()),
});
// The walkthrough's rule (etl_only_table_copies); a table copy is DDL, so the window applies too.
CASES.push(
  {
    name: 'cookbook walkthrough: table copy outside etl',
    user: 'postgres',
    app: 'h8-copy',
    sql: 'CREATE TEMP TABLE h8_copy AS SELECT 1 AS n',
    allow: false,
  },
  {
    name: 'cookbook walkthrough: table copy by etl',
    user: 'postgres',
    app: 'etl',
    sql: 'SELECT 1 AS n INTO TEMP h8_copy',
    allow: inWindow(new Date()),
  },
);

interface Outcome {
  allow: boolean;
  reasons: string[];
  alerts: string[];
}

const outcome = (d: { allow: boolean; reasons: string[]; alerts: Array<{ rule: string }> }): Outcome => ({
  allow: d.allow,
  reasons: [...d.reasons].sort(),
  alerts: d.alerts.map((a) => a.rule).sort(),
});

let dir: string;
let bundle: string;
let gw: RunningGateway;

beforeAll(async () => {
  await ensureRoles();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-explain-live-'));
  const rego = path.join(dir, 'rego');
  fs.cpSync(path.join(REPO, 'rego'), rego, { recursive: true });
  const cookbook = fs.readFileSync(path.join(REPO, 'docs', 'policy-cookbook.md'), 'utf8');
  const blocks = [...cookbook.matchAll(/```rego\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(blocks.length).toBeGreaterThanOrEqual(5);
  // A block of package pgward_test is an opa test file (the walkthrough's): never bundled.
  blocks.forEach((b, i) =>
    fs.writeFileSync(
      path.join(rego, b.startsWith('package pgward_test') ? `cookbook_${i}_test.rego` : `cookbook_${i}.rego`),
      b,
    ),
  );
  fs.writeFileSync(
    path.join(rego, 'bound_value.rego'),
    'package pgward.custom\n\ndeny contains "no bound secrets" if {\n\tsome p in input.message.parameters\n\tp.value == "s3cret"\n}\n',
  );
  bundle = path.join(dir, 'bundle.tar.gz');
  await execFileP(gatewayRuntime(), [CLI, 'build', rego, '-o', bundle], { cwd: os.tmpdir() });
  gw = await startGateway({
    bundle,
    config: {
      audit: { sink: 'none', redact: { literals: false, parameters: false } },
      decision_log: { enabled: true, sample_rate: 1, sink: 'stdout' },
    },
  });
}, 180000);

afterAll(async () => {
  await gw?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function viaExplain(c: Case): Promise<Outcome> {
  const args = [CLI, 'explain', '--bundle', bundle, '--user', c.user, '--database', 'postgres'];
  args.push('--application', c.app);
  if (c.startup) args.push('--startup');
  else if (c.bind) {
    const file = path.join(dir, `${c.app}.json`);
    const message = {
      type: 'Bind',
      statement: { sql: c.sql },
      parameters: c.bind.map((value) => ({ value })),
    };
    fs.writeFileSync(file, JSON.stringify(message));
    args.push('--input', file);
  } else args.push(c.sql!);
  // From another directory: explain must not depend on the working directory.
  const r = await execFileP(gatewayRuntime(), args, { cwd: os.tmpdir() }).catch(
    (err: { stdout: string; code: number }) => err,
  );
  return outcome((JSON.parse(r.stdout) as { decision: Parameters<typeof outcome>[0] }).decision);
}

async function viaGateway(c: Case): Promise<Outcome> {
  const type = c.startup ? 'StartupMessage' : c.bind ? 'Bind' : 'Query';
  try {
    const client = await pgClient({
      host: gw.host,
      port: gw.port,
      user: c.user,
      database: 'postgres',
      applicationName: c.app,
    });
    await client.query(c.sql!, c.bind).catch(() => undefined);
    await client.end();
  } catch {
    // A refused startup: its decision is in the log all the same.
  }
  const line = await gw.waitForLog((l) => {
    const input = l.input as
      { message?: { type?: string }; connection?: { application_name?: string | null } } | undefined;
    return input?.message?.type === type && input.connection?.application_name === c.app;
  });
  return outcome(line.result as Parameters<typeof outcome>[0]);
}

describe('explain and the live gateway decide alike', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const live = await viaGateway(c);
    expect(await viaExplain(c)).toEqual(live);
    expect(live.allow).toBe(c.allow);
  });
});

describe("the cookbook's maintenance window, at a given time", () => {
  const at = async (time: string) => {
    const args = [CLI, 'explain', '--bundle', bundle, '--time', time, 'CREATE TABLE h3_w (a int)'];
    const r = await execFileP(gatewayRuntime(), args).catch((err: { stdout: string }) => err);
    return JSON.parse(r.stdout) as {
      input: { time?: unknown };
      decision: { allow: boolean; reasons: string[] };
    };
  };

  it('allows DDL on Sunday 03:00 UTC and denies it on Sunday 04:00 and Monday 03:00', async () => {
    const sunday = await at('2026-12-06T03:00:00Z');
    expect(sunday.decision.allow).toBe(true);
    // Only the parts of the time the rules read are in the evaluated document.
    expect(sunday.input.time).toEqual({ weekday: 0, hour: 3 });
    for (const t of ['2026-12-06T04:00:00Z', '2026-12-07T03:00:00Z']) {
      expect((await at(t)).decision.reasons).toContain(
        'DDL only in the maintenance window (Sunday 02:00-04:00 UTC)',
      );
    }
  });
});

describe('the live gateway', () => {
  it("logs the bundle's input paths when it activates it", async () => {
    const { loadBundle } = await import('../../gateway/src/policy/bundle');
    const recorded = ((await loadBundle(bundle)).manifest.metadata?.['pgward'] as { input_paths: string[][] })
      .input_paths;
    // The statements' fields the rules read, never their SQL texts (a cookbook rule reads message.sql).
    expect(recorded).toContainEqual(['statements', '*', 'command']);
    expect(recorded.filter((p) => p[0] === 'statements' && (p.length < 3 || p[2] === 'sql'))).toEqual([]);
    const line = gw.logs.find((l) => l.msg === 'policy bundle activated');
    expect(line?.input_paths).toEqual(recorded);
  });
});
