import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCodes, PgwardError } from '../errors';
import { loadBundle } from './bundle';
import { buildBindInput, buildQueryInput, buildStartupInput } from './input';
import {
  ActiveEngine,
  buildEngineFromSource,
  OpaWasmEngine,
  smokeInputs,
  GenerationalCache,
} from './opa-engine';
import type { ConnectionInfo, InputDocument } from './types';
import type { StatementInfo } from '../sql/types';
import { deepFreeze } from '../sql/frozen';

const REPO = path.resolve(__dirname, '../../..');

/** Tiny policies, one per way a bundle can answer. */
const POLICIES: Record<string, string> = {
  'allow-all': 'decision := {"allow": true, "reasons": [], "alerts": []}',
  'deny-all': `decision := {
  "allow": false,
  "reasons": ["no access"],
  "alerts": [{"rule": "deny_all", "severity": "high", "message": "denied"}],
  "sqlstate": "28000",
}`,
  undefined: 'decision := {"allow": true} if input.no_such_field == 1',
  'not-object': 'decision := "allow"',
  'bad-allow': 'decision := {"allow": "true"}',
  // Two complete definitions that disagree: a run-time conflict, which opa-wasm throws as a string.
  throws: 'decision := {"allow": true} if input.version == 1\n\ndecision := {"allow": false} if input.phase',
  oom: 'big := [x | some x in numbers.range(1, object.get(input, "n", 1))]\n\ndecision := {"allow": count(big) > 0}',
  random: 'decision := {"allow": rand.intn("coin", 2) == 0}',
  reads: `decision := {
  "allow": true,
  "reasons": [
    input.connection.user,
    input.connection.transaction_status,
    json.marshal(input.statements),
    json.marshal(object.get(input.message, "statement", "absent")),
  ],
}`,
  'bind-values': `decision := {"allow": count(_d) == 0, "denials": _d, "alerts": []}

_d := [d | some p in input.message.parameters; p.value == "forbidden"; d := {"rule": "v", "message": "v", "priority": 1}]`,
  echo: `decision := {
  "allow": input.phase == "startup",
  "reasons": [input.message.type, input.connection.user],
  "session_parameters": {"application_name": data.pgward.app},
}`,
};

let workDir: string;
const bundles: Record<string, string> = {};

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgward-engine-'));
  for (const [name, body] of Object.entries(POLICIES)) {
    const src = path.join(workDir, 'src', name);
    await fs.mkdir(src, { recursive: true });
    await fs.writeFile(path.join(src, 'policy.rego'), `package pgward\n\n${body}\n`);
    await fs.writeFile(path.join(src, 'data.json'), JSON.stringify({ pgward: { app: 'from-data' } }));
    const out = path.join(workDir, `${name}.tar.gz`);
    execFileSync(
      'go',
      [
        'tool',
        'opa',
        'build',
        '-t',
        'wasm',
        '-e',
        'pgward/decision',
        '--revision',
        `rev-${name}`,
        '-o',
        out,
        src,
      ],
      {
        cwd: path.join(REPO, 'wasm-build'),
        env: { ...process.env, PATH: `/usr/local/go/bin:${process.env['PATH'] ?? ''}` },
        stdio: 'pipe',
      },
    );
    bundles[name] = out;
  }
}, 300_000);

afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

const conn: ConnectionInfo = {
  id: 'c1',
  client_addr: '127.0.0.1',
  client_port: 50000,
  tls: { enabled: false, version: null, cipher: null, client_cert_subject: null },
  user: 'alice',
  database: 'app',
  application_name: 'psql',
  parameters: { user: 'alice', database: 'app', application_name: 'psql' },
  options: {},
  protocol_version: '3.0',
  authenticated: true,
  transaction_status: 'I',
};
const startup = buildStartupInput(conn);
const query: InputDocument = buildQueryInput(
  conn,
  'SELECT 1',
  { statements: [], parse_error: null },
  { maxSqlBytes: 100 },
);

async function engine(name: string, memoryMaxPages?: number): Promise<OpaWasmEngine> {
  const opts =
    memoryMaxPages === undefined
      ? { entrypoint: 'pgward/decision' }
      : { entrypoint: 'pgward/decision', memoryMaxPages };
  return OpaWasmEngine.create(await loadBundle(bundles[name]!), opts);
}

/** An engine for bundle `name` whose manifest records `paths` as the input paths its policy reads. */
async function engineReading(name: string, paths: string[][]): Promise<OpaWasmEngine> {
  const bundle = await loadBundle(bundles[name]!);
  bundle.manifest.metadata = { pgward: { input_paths: paths } };
  return OpaWasmEngine.create(bundle, { entrypoint: 'pgward/decision' });
}

describe('OpaWasmEngine', () => {
  it('allow-all allows, with an id, the revision and the time taken', async () => {
    const e = await engine('allow-all');
    const d = e.evaluate(query);
    expect(d).toMatchObject({
      allow: true,
      reasons: [],
      alerts: [],
      sqlstate: null,
      error_code: null,
      revision: 'rev-allow-all',
    });
    expect(d.id).toMatch(/^[0-9a-f]{16}-\d+$/);
    expect(d.eval_seconds).toBeGreaterThan(0);
    expect(d.eval_seconds).toBeLessThan(1);
    expect(e.evaluate(query).id).not.toBe(d.id);
    expect(e.bundle()).toMatchObject({
      revision: 'rev-allow-all',
      entrypoint: 'pgward/decision',
      opa_version: null,
    });
    expect(e.bundle().source).toBe(bundles['allow-all']);
  });

  it('deny-all denies with its reasons, alerts and sqlstate and no error code', async () => {
    const d = (await engine('deny-all')).evaluate(startup);
    expect(d).toMatchObject({
      allow: false,
      reasons: ['no access'],
      alerts: [{ rule: 'deny_all', severity: 'high', message: 'denied' }],
      sqlstate: '28000',
      error_code: null,
      error_message: null,
    });
  });

  it('sees the input and data.json', async () => {
    const e = await engine('echo');
    expect(e.evaluate(startup)).toMatchObject({
      allow: true,
      reasons: ['StartupMessage', 'alice'],
      session_parameters: { application_name: 'from-data' },
    });
    expect(e.evaluate(query)).toMatchObject({ allow: false, reasons: ['Query', 'alice'], error_code: null });
  });

  const failing: [string, string][] = [
    ['undefined', ErrorCodes.POLICY_UNDEFINED],
    ['not-object', ErrorCodes.POLICY_BAD_DECISION],
    ['bad-allow', ErrorCodes.POLICY_BAD_DECISION],
    ['throws', ErrorCodes.POLICY_EVAL],
  ];
  it.each(failing)('%s denies with %s', async (name, code) => {
    const e = await engine(name);
    const d = e.evaluate(query);
    expect(d).toMatchObject({ allow: false, error_code: code, revision: `rev-${name}`, reasons: [] });
    expect(d.error_message).toEqual(expect.any(String));
    if (name === 'throws') expect(d.error_message).toMatch(/conflict/);
  });

  it('an evaluation that runs out of memory denies, and the next one works on a fresh instance', async () => {
    const e = await engine('oom', 32);
    const big = { ...query, n: 2_000_000 } as unknown as InputDocument;
    const d = e.evaluate(big);
    expect(d).toMatchObject({ allow: false, error_code: ErrorCodes.POLICY_EVAL });
    expect(d.error_message).toMatch(/opa_malloc/);
    expect(e.recreatedCount()).toBe(1);
    expect(e.evaluate({ ...query, n: 10 } as unknown as InputDocument)).toMatchObject({
      allow: true,
      error_code: null,
    });
  });

  it('an input larger than the memory cap denies', async () => {
    const e = await engine('allow-all', 32);
    const d = e.evaluate({ ...query, message: { type: 'Query', sql: 'x'.repeat(4 * 1024 * 1024) } });
    expect(d).toMatchObject({ allow: false, error_code: ErrorCodes.POLICY_EVAL });
    expect(d.error_message).toMatch(/Maximum memory size exceeded/);
    expect(e.evaluate(query)).toMatchObject({ allow: true });
  });

  it('an input that cannot be serialized denies with POLICY_INPUT', async () => {
    const e = await engine('allow-all');
    const cyclic: Record<string, unknown> = { ...query };
    cyclic['self'] = cyclic;
    expect(e.evaluate(cyclic as unknown as InputDocument)).toMatchObject({
      allow: false,
      error_code: ErrorCodes.POLICY_INPUT,
    });
  });

  it('refuses a bundle without the entrypoint', async () => {
    const b = await loadBundle(bundles['allow-all']!);
    await expect(OpaWasmEngine.create(b, { entrypoint: 'pgward/other' })).rejects.toMatchObject({
      code: ErrorCodes.BUNDLE_LOAD,
      message: expect.stringMatching(/no entrypoint pgward\/other \(it has: pgward\/decision\)/),
    });
  });

  it('refuses bytes that are not WebAssembly', async () => {
    const b = await loadBundle(bundles['allow-all']!);
    await expect(
      OpaWasmEngine.create({ ...b, wasm: Buffer.from('not wasm') }, { entrypoint: 'pgward/decision' }),
    ).rejects.toMatchObject({ code: ErrorCodes.BUNDLE_LOAD });
  });
});

describe('decision cache', () => {
  it('answers a repeated input from the cache with a fresh decision id', async () => {
    const e = await engine('echo');
    const a = e.evaluate(startup);
    const b = e.evaluate(startup);
    expect(b.id).not.toBe(a.id);
    expect({ ...b, id: '', eval_seconds: 0 }).toEqual({ ...a, id: '', eval_seconds: 0 });
    const other = e.evaluate({ ...startup, connection: { ...conn, user: 'bob' } });
    expect(other.reasons).toEqual(['StartupMessage', 'bob']);
  });

  it('answers the connections of one principal alike when the bundle reads neither id nor port', async () => {
    const bundle = await loadBundle(bundles['echo']!);
    // As make policy records it for this policy (tests/policy/input-paths.test.ts runs the analysis).
    const paths = [['connection', 'user'], ['message', 'type'], ['phase']];
    bundle.manifest.metadata = { pgward: { input_paths: paths } };
    const e = await OpaWasmEngine.create(bundle, { entrypoint: 'pgward/decision' });
    expect(e.bundle().input_paths).toEqual(paths);
    const sessions = [
      { ...conn, id: 'a', client_port: 1 },
      { ...conn, id: 'b', client_port: 2 },
    ];
    const evaluated = e.evaluatedInput(buildStartupInput(sessions[0]!));
    expect(evaluated).toEqual({
      phase: 'startup',
      connection: { user: 'alice' },
      message: { type: 'StartupMessage' },
    });
    const before = e.cacheStats();
    const [a, b] = sessions.map((c) => e.evaluate(buildStartupInput(c)));
    expect(e.cacheStats().misses - before.misses).toBe(1);
    expect(e.cacheStats().hits - before.hits).toBe(1);
    expect(b!.reasons).toEqual(a!.reasons);
    // Another user is another input.
    e.evaluate(buildStartupInput({ ...conn, user: 'bob' }));
    expect(e.cacheStats().misses - before.misses).toBe(2);
  });

  it('makes a decision again (new id, a cache hit) only for a bundle whose decisions follow its paths', async () => {
    const e = await engineReading('echo', [
      ['connection', 'user'],
      ['message', 'type'],
    ]);
    const d = e.evaluate(startup);
    const before = e.cacheStats();
    const again = e.again(d)!;
    expect(again.id).not.toBe(d.id);
    expect({ ...again, id: '', eval_seconds: 0 }).toEqual({ ...d, id: '', eval_seconds: 0 });
    expect(e.cacheStats()).toEqual({ hits: before.hits + 1, misses: before.misses });
    expect(new ActiveEngine(e).again(d)!.reasons).toEqual(d.reasons);
    expect(new ActiveEngine(null).again(d)).toBeNull();
    // Without input paths (whole document, time included) or reading time: never.
    expect((await engine('echo')).again(d)).toBeNull();
    const timed = await loadBundle(bundles['echo']!);
    timed.manifest.metadata = { pgward: { input_paths: [['connection', 'user'], ['time']] } };
    expect((await OpaWasmEngine.create(timed, { entrypoint: 'pgward/decision' })).again(d)).toBeNull();
  });

  it('keeps no cache for a bundle without input paths (whole document, time included)', async () => {
    const e = await engine('echo');
    expect(e.bundle().input_paths).toBeNull();
    const before = e.cacheStats();
    for (let i = 0; i < 3; i++) e.evaluate(startup);
    expect(e.cacheStats().hits).toBe(before.hits);
    expect(e.cacheStats().misses - before.misses).toBe(3);
  });

  it('refuses a Bind built without values when the bundle reads them (a shadow beside an active bundle)', async () => {
    const bundle = await loadBundle(bundles['echo']!);
    bundle.manifest.metadata = { pgward: { input_paths: [['message'], ['phase'], ['connection', 'user']] } };
    const e = await OpaWasmEngine.create(bundle, { entrypoint: 'pgward/decision' });
    const bind = (values: boolean) =>
      buildBindInput(
        conn,
        { portalName: '', statement: null, params: [{ typeOid: 25, format: 0, value: Buffer.from('v') }] },
        { maxSqlBytes: 100, bindParameterValues: values },
      );
    const d = e.evaluate(bind(false));
    expect(d).toMatchObject({ allow: false, error_code: ErrorCodes.POLICY_INPUT });
    expect(e.evaluate(bind(true)).error_code).toBeNull();
  });

  it('denies (and so never caches an answer of) a policy calling rand.intn, which opa-wasm cannot run', async () => {
    const e = await engine('random');
    const d = e.evaluate(query);
    expect(d.allow).toBe(false);
    expect(d.error_code).toBe('PGWARD_ERR_POLICY_EVAL');
  });
});

describe('the decision cache never answers for another input', () => {
  const paths = [
    ['connection', 'user'],
    ['connection', 'transaction_status'],
    ['statements'],
    ['message', 'statement', 'statements', '*', 'command'],
    ['message', 'type'],
  ];
  async function reads(): Promise<OpaWasmEngine> {
    const bundle = await loadBundle(bundles['reads']!);
    bundle.manifest.metadata = { pgward: { input_paths: paths } };
    return OpaWasmEngine.create(bundle, { entrypoint: 'pgward/decision' });
  }
  const stmt = (command: string) =>
    deepFreeze([{ command, sql: `${command} x`, relations: [] }]) as unknown as StatementInfo[];
  const q = (c: ConnectionInfo, statements: StatementInfo[]) =>
    buildQueryInput(c, 'SELECT 1', { statements, parse_error: null }, { maxSqlBytes: 100 });

  it('follows a session connection changed in place (user, transaction status)', async () => {
    const e = await reads();
    const live: ConnectionInfo = { ...conn, tls: Object.freeze({ ...conn.tls }) };
    const list = stmt('SELECT');
    expect(e.evaluate(q(live, list)).reasons.slice(0, 2)).toEqual(['alice', 'I']);
    expect(e.evaluate(q(live, list)).reasons.slice(0, 2)).toEqual(['alice', 'I']);
    expect(e.cacheStats()).toEqual({ hits: 1, misses: 1 });
    live.transaction_status = 'T';
    expect(e.evaluate(q(live, list)).reasons.slice(0, 2)).toEqual(['alice', 'T']);
    live.user = 'bob';
    expect(e.evaluate(q(live, list)).reasons.slice(0, 2)).toEqual(['bob', 'T']);
    live.user = 'alice';
    live.transaction_status = 'I';
    expect(e.evaluate(q(live, list)).reasons.slice(0, 2)).toEqual(['alice', 'I']);
    expect(e.cacheStats()).toEqual({ hits: 2, misses: 3 });
  });

  it('tells statement lists apart, frozen (by identity) or not (by content)', async () => {
    const e = await reads();
    const select = stmt('SELECT');
    const del = stmt('DELETE');
    expect(e.evaluate(q(conn, select)).reasons[2]).toContain('"SELECT"');
    expect(e.evaluate(q(conn, del)).reasons[2]).toContain('"DELETE"');
    expect(e.evaluate(q(conn, select)).reasons[2]).toContain('"SELECT"');
    // A list that can still change is never keyed by identity.
    const mutable = [{ command: 'SELECT', sql: 'SELECT x', relations: [] }] as unknown as StatementInfo[];
    expect(e.evaluate(q(conn, mutable)).reasons[2]).toContain('"SELECT"');
    (mutable[0] as { command: string }).command = 'DROP';
    expect(e.evaluate(q(conn, mutable)).reasons[2]).toContain('"DROP"');
  });

  it('tells a Bind of an unknown statement from a known one, and known ones apart', async () => {
    const e = await reads();
    const bind = (statements: StatementInfo[] | null) =>
      buildBindInput(
        conn,
        {
          portalName: '',
          statement: statements === null ? null : { name: 's', sql: 'x', statements, parse_error: null },
          params: [],
        },
        { maxSqlBytes: 100, bindParameterValues: false },
      );
    const insert = stmt('INSERT');
    const update = stmt('UPDATE');
    expect(e.evaluate(bind(null)).reasons[3]).toBe('null');
    expect(e.evaluate(bind(insert)).reasons[3]).toBe('{"statements":[{"command":"INSERT"}]}');
    expect(e.evaluate(bind(update)).reasons[3]).toBe('{"statements":[{"command":"UPDATE"}]}');
    expect(e.evaluate(bind(insert)).reasons[3]).toBe('{"statements":[{"command":"INSERT"}]}');
    expect(e.evaluate(bind(null)).reasons[3]).toBe('null');
    expect(e.evaluate(q(conn, insert)).reasons[3]).toBe('"absent"');
    expect(e.cacheStats()).toEqual({ hits: 2, misses: 4 });
  });
});

describe('the cache gate', () => {
  it('stops keying Binds whose values never repeat, judging each one all the same, and keeps Query cached', async () => {
    const e = await engineReading('bind-values', [
      ['message', 'parameters'],
      ['message', 'type'],
    ]);
    const bind = (value: string) =>
      buildBindInput(
        conn,
        { portalName: '', statement: null, params: [{ typeOid: 25, format: 0, value: Buffer.from(value) }] },
        { maxSqlBytes: 100 },
      );
    const parse = buildQueryInput(
      conn,
      'SELECT 1',
      { statements: [], parse_error: null },
      { maxSqlBytes: 100 },
    );
    for (let i = 0; i < 2000; i++) {
      expect(e.evaluate(bind(`v${i}`)).allow).toBe(true);
      expect(e.evaluate(parse).allow).toBe(true);
    }
    // 2000 distinct Binds all ran the policy; the Query was evaluated once.
    expect(e.cacheStats()).toEqual({ hits: 1999, misses: 2001 });
    // Only the first window's Binds (1024) were keyed and stored (the Query is in the lean cache).
    expect((e as unknown as { cache: { size: number } }).cache.size).toBe(1024);
    const gate = (e as unknown as { gate: { resting(kind: string): boolean } }).gate;
    expect(gate.resting('Bind')).toBe(true);
    expect(gate.resting('Query')).toBe(false);
    // Resting changes only the cost: a forbidden value is still denied, an allowed one allowed.
    expect(e.evaluate(bind('forbidden'))).toMatchObject({ allow: false, denials: [{ rule: 'v' }] });
    expect(e.evaluate(bind('v1')).allow).toBe(true);
    expect(e.evaluate(bind('forbidden')).allow).toBe(false);
  });
});

describe('ActiveEngine', () => {
  it('denies with POLICY_NO_BUNDLE when empty', () => {
    const a = new ActiveEngine();
    expect(a.bundle()).toBeNull();
    const d = a.evaluate(query);
    expect(d).toMatchObject({ allow: false, error_code: ErrorCodes.POLICY_NO_BUNDLE, revision: '' });
    expect(d.id).toEqual(expect.any(String));
  });

  it('swaps one reference', async () => {
    const a = new ActiveEngine();
    const allow = await engine('allow-all');
    const deny = await engine('deny-all');
    expect(a.swap(allow)).toBeNull();
    expect(a.evaluate(query).allow).toBe(true);
    expect(a.bundle()?.revision).toBe('rev-allow-all');
    expect(a.swap(deny)).toBe(allow);
    expect(a.evaluate(query).allow).toBe(false);
    expect(a.bundle()?.revision).toBe('rev-deny-all');
    expect(a.swap(null)).toBe(deny);
    expect(a.evaluate(query).error_code).toBe(ErrorCodes.POLICY_NO_BUNDLE);
  });
});

describe('buildEngineFromSource', () => {
  it('builds and smoke-tests good bundles (allow or deny are both valid answers)', async () => {
    for (const name of ['allow-all', 'deny-all', 'echo']) {
      const e = await buildEngineFromSource(bundles[name]!, { entrypoint: 'pgward/decision' });
      expect(e.bundle().revision).toBe(`rev-${name}`);
    }
  });

  it.each(['undefined', 'not-object', 'bad-allow', 'throws'])(
    'refuses %s with BUNDLE_SMOKE, and the active engine keeps the old bundle',
    async (name) => {
      const active = new ActiveEngine(await engine('allow-all'));
      let err: unknown;
      try {
        active.swap(await buildEngineFromSource(bundles[name]!, { entrypoint: 'pgward/decision' }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PgwardError);
      expect((err as PgwardError).code).toBe(ErrorCodes.BUNDLE_SMOKE);
      expect(active.bundle()?.revision).toBe('rev-allow-all');
      expect(active.evaluate(query).allow).toBe(true);
    },
  );

  it('reports a load failure as BUNDLE_LOAD', async () => {
    await expect(
      buildEngineFromSource(path.join(workDir, 'missing.tar.gz'), { entrypoint: 'pgward/decision' }),
    ).rejects.toMatchObject({ code: ErrorCodes.BUNDLE_LOAD });
  });

  it('smoke inputs are a startup and a Query', () => {
    expect(smokeInputs().map((i) => i.message.type)).toEqual(['StartupMessage', 'Query']);
  });
});

describe('GenerationalCache', () => {
  it('stays within its bound and keeps what was used since the last turnover', () => {
    const c = new GenerationalCache<number>(4);
    for (let i = 0; i < 100; i++) {
      c.set(`k${i}`, i);
      expect(c.size).toBeLessThanOrEqual(4);
    }
    const fresh = new GenerationalCache<number>(4);
    fresh.set('a', 1);
    fresh.set('b', 2); // young full (2 of 4)
    fresh.set('c', 3); // a, b become old
    expect(fresh.get('a')).toBe(1); // moved to young: young = c, a
    fresh.set('d', 4); // turnover: old = c, a; b is dropped
    expect(fresh.get('b')).toBeUndefined();
    expect(fresh.get('a')).toBe(1);
    expect(fresh.get('c')).toBe(3);
    expect(fresh.get('d')).toBe(4);
  });
});
