import {
  encodeBind,
  encodeClose,
  encodeParse,
  encodeQuery,
  readFrontendMessage,
  type JudgedMessage,
} from '../protocol';
import { classify, initSqlParser, sessionClassifier } from '../sql';
import { UNKNOWN_STATEMENT_ERROR } from './input';
import {
  CONNECTION_FIELDS,
  FrameJudge,
  mayChangeLexicalState,
  sameConnection,
  type JudgeContext,
} from './frame-judge';
import { readSqlText } from '../sql/lexical';
import { ReplayStatements } from '../session/judged-ops';
import type { BundleInfo, ConnectionInfo, Decision, InputDocument, PolicyEngine } from './types';

/** Records the inputs it is asked about; the bundle it reports declares `options`. */
class RecordingEngine implements PolicyEngine {
  readonly inputs: InputDocument[] = [];
  constructor(private readonly options: Partial<BundleInfo>) {}
  evaluate(input: InputDocument): Decision {
    this.inputs.push(input);
    return {
      id: 'd',
      allow: true,
      denials: [],
      reasons: [],
      alerts: [],
      sqlstate: null,
      session_parameters: {},
      revision: 'r',
      error_code: null,
      eval_seconds: 0,
    };
  }
  bundle(): BundleInfo {
    return {
      revision: 'r',
      entrypoint: 'pgward/decision',
      source: 's',
      loaded_at: '',
      opa_version: null,
      ...this.options,
    };
  }
}

function session(): ConnectionInfo {
  return {
    id: 'abc-1',
    client_addr: '10.0.0.1',
    client_port: 50000,
    tls: Object.freeze({ enabled: false, version: null, cipher: null, client_cert_subject: null }),
    user: 'app',
    database: 'app',
    application_name: null,
    parameters: Object.freeze({ user: 'app' }),
    options: Object.freeze({}),
    protocol_version: '3.0',
    authenticated: true,
    transaction_status: 'I',
  };
}

/**
 * A frame decoded once, as the session does before judging it. The judge takes only a decoded
 * message, never bytes: decoding twice on the judged path cannot compile.
 */
function msg(frame: Buffer): JudgedMessage {
  const m = readFrontendMessage({ type: frame[0]!, bytes: frame, bodyOffset: 5 });
  if (m.name !== 'Query' && m.name !== 'Parse' && m.name !== 'Bind' && m.name !== 'FunctionCall')
    throw new Error(`not judged: ${m.name}`);
  return m;
}

function ctx(view = new ReplayStatements()): JudgeContext {
  return { view, serverParameters: new Map() };
}

const unclassified = () => ({ statements: [], parse_error: null });

describe('FrameJudge.judge', () => {
  it('takes a message decoded once, never bytes (a second decode on the judged path cannot compile)', () => {
    const judge = new FrameJudge(new RecordingEngine({}), unclassified, { maxSqlBytes: 1024 });
    const frame = encodeQuery('SELECT 1');
    // @ts-expect-error a raw frame is not a JudgedMessage
    const fromBytes = (): unknown => judge.judge(frame, session(), ctx());
    expect(typeof fromBytes).toBe('function');
    expect(judge.judge(msg(frame), session(), ctx()).message?.bytes).toBe(frame);
  });
});

describe("FrameJudge and the bundle's input paths", () => {
  it("hands the session's connection to the engine as it is (the engine cuts it to the paths)", () => {
    const engine = new RecordingEngine({ input_paths: [['connection', 'user']] });
    const judge = new FrameJudge(engine, unclassified, { maxSqlBytes: 1024 });
    const conn = session();
    judge.startup(conn);
    judge.judge(msg(encodeQuery('SELECT 1')), conn, ctx());
    for (const input of engine.inputs) expect(input.connection).toBe(conn);
  });

  const bindValue = (paths: string[][] | null | undefined): unknown => {
    const engine = new RecordingEngine(paths === undefined ? {} : { input_paths: paths });
    const judge = new FrameJudge(engine, unclassified, { maxSqlBytes: 1024 });
    const view = new ReplayStatements();
    judge.judge(msg(encodeBind('', '', [{ format: 0, value: Buffer.from('42') }])), session(), ctx(view));
    return engine.inputs[0]!.message.parameters![0];
  };

  it('decodes Bind values only when a path of the bundle reaches them', () => {
    const omitted = { type_oid: 0, format: 'text', value: null, encoding: 'omitted' };
    const decoded = { type_oid: 0, format: 'text', value: '42', encoding: 'decoded' };
    expect(bindValue([['statements'], ['connection']])).toEqual(omitted);
    expect(bindValue([['message', 'type']])).toEqual(omitted);
    expect(bindValue([['message', 'parameters', '*', 'value']])).toEqual(decoded);
    expect(bindValue([['message', 'parameters']])).toEqual(decoded);
    expect(bindValue([['message', '*', '*', 'value']])).toEqual(decoded);
    expect(bindValue([[]])).toEqual(decoded);
    // No paths in the manifest: the whole input.
    expect(bindValue(null)).toEqual(decoded);
    expect(bindValue(undefined)).toEqual(decoded);
  });
});

describe('FrameJudge: what a Bind runs', () => {
  beforeAll(async () => {
    await initSqlParser();
  });

  /** Every judged message allowed and settled, as the session does; returns the Bind's input. */
  function run(frames: Buffer[]): InputDocument | undefined {
    const engine = new RecordingEngine({});
    const judge = new FrameJudge(engine, classify, { maxSqlBytes: 1024 });
    const conn = session();
    const statements = new ReplayStatements();
    let bind: InputDocument | undefined;
    for (const f of frames) {
      const m = readFrontendMessage({ type: f[0]!, bytes: f, bodyOffset: 5 });
      if (m.name !== 'Query' && m.name !== 'Parse' && m.name !== 'Bind' && m.name !== 'FunctionCall') {
        statements.other(m);
        continue;
      }
      const j = judge.judge(m, conn, ctx(statements));
      statements.judged(j, j.decision.allow);
      if (j.type === 'Bind') bind = j.input;
    }
    return bind;
  }

  const bindS = (name: string) => encodeBind('', name, []);
  const commands = (input: InputDocument | undefined) => input?.statements.map((s) => s.command);

  it('judges a named statement by what it was prepared with', () => {
    expect(commands(run([encodeParse('s', 'SELECT 1'), bindS('s')]))).toEqual(['SELECT']);
    expect(commands(run([encodeQuery('PREPARE s AS DELETE FROM secret'), bindS('s')]))).toEqual(['DELETE']);
  });

  it('follows DEALLOCATE and a new PREPARE of a name first defined by Parse', () => {
    const input = run([
      encodeParse('s', 'SELECT 1'),
      encodeQuery('DEALLOCATE s'),
      encodeQuery('PREPARE s AS DELETE FROM secret'),
      bindS('s'),
    ]);
    expect(commands(input)).toEqual(['DELETE']);
  });

  it('keeps the first definition of a name defined twice (the server refuses the second, 42P05)', () => {
    for (const frames of [
      [encodeQuery('PREPARE t AS DELETE FROM secret'), encodeParse('t', 'SELECT 2'), bindS('t')],
      [encodeParse('u', 'DELETE FROM secret'), encodeParse('u', 'SELECT 3'), bindS('u')],
    ]) {
      expect(commands(run(frames))).toEqual(['DELETE']);
    }
  });

  it('denies a Bind of a name the server does not have with 26000', () => {
    const engine = new RecordingEngine({});
    const judge = new FrameJudge(engine, classify, { maxSqlBytes: 1024 });
    const j = judge.judge(msg(bindS('nope')), session(), ctx());
    expect(j?.decision).toMatchObject({ allow: false, sqlstate: '26000', error_code: null });
    expect(j?.resolution).toBe('absent');
    expect(j?.input.parse_error).toBe(UNKNOWN_STATEMENT_ERROR);
  });

  it('forgets a name on Close and DISCARD ALL, and the unnamed statement on a simple Query', () => {
    expect(
      run([encodeParse('c', 'SELECT 1'), encodeClose('S', 'c'), bindS('c')])?.message.statement,
    ).toBeNull();
    expect(
      run([encodeParse('d', 'SELECT 1'), encodeQuery('DISCARD ALL'), bindS('d')])?.message.statement,
    ).toBeNull();
    expect(
      run([encodeParse('', 'SELECT 1'), encodeQuery('SELECT 2'), bindS('')])?.message.statement,
    ).toBeNull();
    expect(commands(run([encodeParse('', 'DELETE FROM t WHERE a = 1'), bindS('')]))).toEqual(['DELETE']);
  });
});

describe('FrameJudge SQL text seam', () => {
  beforeAll(async () => {
    await initSqlParser();
  });
  const sjis = { clientEncoding: 'UTF8', standardConformingStrings: false, changing: false };

  it('denies a Query or Parse whose text the decoder refuses, with its code and SQLSTATE, whatever the policy says', () => {
    const engine = new RecordingEngine({});
    const judge = new FrameJudge(engine, classify, { maxSqlBytes: 1024 }, (b) => readSqlText(b, sjis));
    const conn = session();
    for (const frame of [encodeQuery("SELECT '\\' || 'x'"), encodeParse('', "SELECT '\\'")]) {
      const j = judge.judge(msg(frame), conn, ctx());
      expect(j.decision).toMatchObject({
        allow: false,
        error_code: 'PGWARD_ERR_SQL_LEXICAL_STRING_SYNTAX',
        sqlstate: '0A000',
      });
      expect(j.classification).toMatchObject({ statements: [] });
      expect(engine.inputs.at(-1)!.parse_error).toMatch(/standard_conforming_strings is off/);
    }
    // Text every state reads alike passes.
    const ok = judge.judge(msg(encodeQuery('SELECT 1')), conn, ctx());
    expect(ok.decision.allow).toBe(true);
  });

  it('mayChangeLexicalState: lexical settings, RESET ALL, DISCARD ALL, unknown EXECUTE, transaction ends after a change', () => {
    const may = (sql: string, after = false): boolean =>
      mayChangeLexicalState(classify(sql).statements, after);
    expect(may("SET client_encoding = 'SJIS'")).toBe(true);
    expect(may('SET standard_conforming_strings TO off')).toBe(true);
    expect(may("SELECT set_config('client_encoding', 'SJIS', false)")).toBe(true);
    expect(may('SELECT set_config($1, $2, false)')).toBe(true);
    expect(may('RESET ALL')).toBe(true);
    expect(may('DISCARD ALL')).toBe(true);
    expect(may('EXECUTE unknown_to_pgward')).toBe(true);
    expect(may("SET search_path = 'x'")).toBe(false);
    expect(may('SELECT 1')).toBe(false);
    expect(may('COMMIT')).toBe(false);
    expect(may('ROLLBACK', true)).toBe(true);
    expect(may('ROLLBACK TO SAVEPOINT a', true)).toBe(true);
  });
});

describe('FrameJudge: a repeated Query or Parse reuses its text, classification and input', () => {
  /** A judge whose decoder and classifier count their calls, and a context with a decoder state. */
  function counting() {
    const engine = new RecordingEngine({});
    const calls = { decode: 0, classify: 0 };
    const judge = new FrameJudge(
      engine,
      (sql) => (calls.classify++, classify(sql)),
      { maxSqlBytes: 1024 },
      (bytes) => (calls.decode++, { ok: true, sql: bytes.toString('utf8') }),
    );
    let state: object | null = { encoding: 'UTF8' };
    const c: JudgeContext = { ...ctx(), decoderState: () => state };
    return { engine, calls, judge, c, setState: (s: object | null) => void (state = s) };
  }

  it('judges a frame in full until it repeats, then reuses that work, every one evaluated', () => {
    const { engine, calls, judge, c } = counting();
    const conn = session();
    for (const frame of [encodeParse('', 'SELECT $1'), encodeQuery('SELECT 1')]) {
      calls.decode = calls.classify = 0;
      const n = engine.inputs.length;
      const j = [0, 1, 2, 3].map(() => judge.judge(msg(Buffer.from(frame)), conn, c));
      // The first is judged in full; the second too, and kept (a repeat); the rest reuse it.
      expect(calls).toEqual({ decode: 2, classify: 2 });
      expect(engine.inputs.length - n).toBe(4);
      expect(j[2]!.input).toBe(j[1]!.input);
      expect(j[3]!.input).toBe(j[1]!.input);
      expect(j[3]!.original).toEqual(j[0]!.original);
      expect(j[3]!.message).not.toBe(j[2]!.message);
    }
  });

  it('gives each Parse its own statement, with the same meaning', () => {
    const { judge, c } = counting();
    const [a, b, d] = [0, 1, 2].map(() => judge.judge(msg(encodeParse('', 'SELECT $1', [23])), session(), c));
    expect(d!.statement).not.toBe(b!.statement);
    expect(d!.statement).toEqual(a!.statement);
  });

  it('reads the text again after a change of how text is read, and never reuses while one is in flight', () => {
    const { calls, judge, c, setState } = counting();
    const conn = session();
    const q = encodeQuery('SELECT 1');
    for (let i = 0; i < 3; i++) judge.judge(msg(q), conn, c);
    expect(calls.decode).toBe(2);
    setState({ encoding: 'LATIN1' });
    judge.judge(msg(q), conn, c);
    expect(calls.decode).toBe(3);
    setState(null);
    judge.judge(msg(q), conn, c);
    judge.judge(msg(q), conn, c);
    judge.judge(msg(q), conn, c);
    expect(calls.decode).toBe(6);
  });

  it('does not reuse another text, a text with a backslash, PREPARE/EXECUTE, a refused text, or without a decoder state', () => {
    const { calls, judge, c } = counting();
    const conn = session();
    const fourTimes = (frame: Buffer, cx: JudgeContext = c): number => {
      calls.decode = 0;
      for (let i = 0; i < 4; i++) judge.judge(msg(frame), conn, cx);
      return calls.decode;
    };
    expect(fourTimes(encodeQuery('SELECT 1'))).toBe(2);
    calls.decode = 0;
    judge.judge(msg(encodeQuery('SELECT 2')), conn, c);
    expect(calls.decode).toBe(1);
    expect(fourTimes(encodeQuery("SELECT E'\\\\'"))).toBe(4);
    expect(fourTimes(encodeQuery('EXECUTE p'))).toBe(4);
    expect(fourTimes(encodeQuery('PREPARE p AS SELECT 1'))).toBe(4);
    expect(fourTimes(encodeParse('', 'SELECT 1'), ctx())).toBe(4);
    const refusing = new FrameJudge(new RecordingEngine({}), classify, { maxSqlBytes: 1024 }, () => {
      calls.decode++;
      return { ok: false, code: 'PGWARD_ERR_SQL_LEXICAL', sqlstate: '22021', reason: 'no' } as never;
    });
    calls.decode = 0;
    let last = null as ReturnType<FrameJudge['judge']> | null;
    for (let i = 0; i < 4; i++) last = refusing.judge(msg(encodeQuery('SELECT 1')), conn, c);
    expect(calls.decode).toBe(4);
    expect(last!.decision.allow).toBe(false);
  });
});

describe('FrameJudge: a decision taken again for an equal document, without evaluating', () => {
  beforeAll(async () => {
    await initSqlParser();
  });

  /**
   * An engine that can make its decisions again (PolicyEngine.again), counting evaluations and
   * repeats; `verdict` is what the next evaluation returns; the bundle reads no Bind value.
   */
  class RepeatingEngine extends RecordingEngine {
    repeats = 0;
    verdict: Partial<Decision> = {};
    private info = super.bundle();
    constructor() {
      super({
        input_paths: [
          ['connection', 'user'],
          ['message', 'type'],
        ],
      });
    }
    override evaluate(input: InputDocument): Decision {
      return { ...super.evaluate(input), id: `e${this.inputs.length}`, ...this.verdict };
    }
    again(d: Decision): Decision {
      this.repeats++;
      return { ...d, id: `again-${d.id}` };
    }
    override bundle(): BundleInfo {
      return this.info;
    }
    reload(): void {
      this.info = { ...this.info, revision: 'r2' };
    }
  }

  function setup() {
    const engine = new RepeatingEngine();
    const judge = new FrameJudge(engine, classify, { maxSqlBytes: 1024 }, (bytes) => ({
      ok: true,
      sql: bytes.toString('utf8'),
    }));
    const view = new ReplayStatements();
    const c: JudgeContext = { ...ctx(view), decoderState: () => view };
    const conn = session();
    view.judged(judge.judge(msg(encodeParse('s', 'SELECT $1::int, $2::text', [23, 25])), conn, c), true);
    const evaluations = () => engine.inputs.length;
    return { engine, judge, c, conn, evaluations };
  }

  const bind = (values: (string | null)[], portal = '') =>
    msg(
      encodeBind(
        portal,
        's',
        values.map((v) => ({ format: 0 as const, value: v === null ? null : Buffer.from(v) })),
      ),
    );

  it('takes a Bind decision again for the same statement, portal and parameter shape, values aside', () => {
    const { engine, judge, c, conn, evaluations } = setup();
    const first = judge.judge(bind(['1', 'a']), conn, c);
    const n = evaluations();
    const again = judge.judge(bind(['2', 'b']), conn, c);
    expect(evaluations()).toBe(n);
    expect(engine.repeats).toBe(1);
    expect(again.decision.id).toBe(`again-${first.decision.id}`);
    expect(again.input).toBe(first.input);
    expect(again).toMatchObject({
      type: 'Bind',
      statementName: 's',
      portalName: '',
      original: first.original,
    });
    expect(again.message).not.toBe(first.message);
    // Another portal, a NULL where a value was: other documents, evaluated.
    judge.judge(bind(['2', 'b'], 'p'), conn, c);
    expect(evaluations()).toBe(n + 1);
    judge.judge(bind(['2', null], 'p'), conn, c);
    expect(evaluations()).toBe(n + 2);
  });

  it('evaluates again after any change of the connection, or of the bundle', () => {
    const { engine, judge, c, conn, evaluations } = setup();
    const changed: Record<string, unknown> = {
      transaction_status: 'T',
      authenticated: false,
      server: Object.freeze({}),
      user: 'other',
      database: 'other',
      tls: Object.freeze({ ...conn.tls }),
      parameters: Object.freeze({ user: 'app' }),
      options: Object.freeze({}),
      application_name: 'psql',
      protocol_version: '3.2',
      client_addr: '10.0.0.2',
      client_port: 1,
      id: 'abc-2',
    };
    expect(Object.keys(changed).sort()).toEqual([...CONNECTION_FIELDS].sort());
    judge.judge(bind(['1', 'a']), conn, c);
    for (const field of CONNECTION_FIELDS) {
      const before = { ...conn };
      (conn as unknown as Record<string, unknown>)[field] = changed[field];
      expect(sameConnection(before, conn)).toBe(false);
      const n = evaluations();
      judge.judge(bind(['1', 'a']), conn, c);
      expect([field, evaluations()]).toEqual([field, n + 1]);
      judge.judge(bind(['1', 'a']), conn, c);
      expect([field, evaluations()]).toEqual([field, n + 1]);
    }
    engine.reload();
    const n = evaluations();
    judge.judge(bind(['1', 'a']), conn, c);
    expect(evaluations()).toBe(n + 1);
  });

  it('keeps no denial, alert or failure, nor a decision an engine cannot make again', () => {
    const { engine, judge, c, conn, evaluations } = setup();
    const verdicts: Partial<Decision>[] = [
      { allow: false, reasons: ['no'] },
      { alerts: [{ rule: 'a', severity: 'low', message: 'm' }] },
      { error_code: 'PGWARD_ERR_POLICY_EVAL' },
    ];
    for (const verdict of verdicts) {
      engine.verdict = verdict;
      const n = evaluations();
      for (let i = 0; i < 3; i++) judge.judge(bind(['1', 'a']), conn, c);
      expect(evaluations()).toBe(n + 3);
    }
    engine.verdict = {};
    engine.again = () => null as never;
    const n = evaluations();
    for (let i = 0; i < 3; i++) judge.judge(bind(['1', 'a']), conn, c);
    expect(evaluations()).toBe(n + 3);
  });

  it('evaluates every Bind when the bundle reads values', () => {
    const engine = new RepeatingEngine();
    engine.bundle().input_paths = [['message', 'parameters']];
    const judge = new FrameJudge(engine, classify, { maxSqlBytes: 1024 });
    const view = new ReplayStatements();
    const c = ctx(view);
    const conn = session();
    view.judged(judge.judge(msg(encodeParse('s', 'SELECT $1::int, $2::text', [23, 25])), conn, c), true);
    const n = engine.inputs.length;
    for (let i = 0; i < 3; i++) judge.judge(bind(['1', 'a']), conn, c);
    expect(engine.inputs.length).toBe(n + 3);
    expect(engine.repeats).toBe(0);
  });

  it('takes the decision of a Query of the same shape again when the bundle reads no SQL text', () => {
    for (const [paths, evaluated] of [
      [
        [
          ['connection', 'user'],
          ['statements', '*', 'command'],
        ],
        1,
      ],
      [
        [
          ['connection', 'user'],
          ['statements', '*', 'sql'],
        ],
        4,
      ],
      [[['message', 'sql']], 4],
      [[['message', 'truncated']], 4],
    ] as const) {
      const engine = new RepeatingEngine();
      engine.bundle().input_paths = paths.map((p) => [...p]);
      // The gateway's classifier: a text of a known shape gets the shape's statements (sessionClassifier).
      const judge = new FrameJudge(engine, sessionClassifier(100), { maxSqlBytes: 1024 });
      const conn = session();
      const text = (n: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${1000 + n}`;
      const texts = [1, 2, 3, 4].map(text);
      // A first judgement of the shape fills the shape cache (its template is made there).
      judge.judge(msg(encodeQuery(text(0))), conn, ctx());
      const n = engine.inputs.length;
      const js = texts.map((t) => judge.judge(msg(encodeQuery(t)), conn, ctx()));
      expect([paths, engine.inputs.length - n]).toEqual([paths, evaluated]);
      // Each judgement keeps its own text in its input and its report.
      expect(js.map((j) => (j.input.message as { sql: string }).sql)).toEqual(texts);
      expect(js.map((j) => j.original!.sql)).toEqual(texts);
      if (evaluated === 1) {
        conn.user = 'other';
        judge.judge(msg(encodeQuery(texts[1]!)), conn, ctx());
        expect(engine.inputs.length - n).toBe(2);
        judge.judge(
          msg(encodeQuery('SELECT abalance FROM pgbench_accounts WHERE aid = 1 OR aid = 2')),
          conn,
          ctx(),
        );
        expect(engine.inputs.length - n).toBe(3);
      }
    }
  });

  it('takes the decision of a repeated Query or Parse again while the connection is the same', () => {
    const { engine, judge, c, conn, evaluations } = setup();
    for (const frame of [encodeQuery('SELECT 1'), encodeParse('', 'SELECT 1')]) {
      const n = evaluations();
      const r = engine.repeats;
      for (let i = 0; i < 4; i++) judge.judge(msg(frame), conn, c);
      // Judged in full twice (the memo is made at the first repeat), then taken again.
      expect(evaluations()).toBe(n + 2);
      expect(engine.repeats).toBe(r + 2);
      conn.transaction_status = conn.transaction_status === 'I' ? 'T' : 'I';
      judge.judge(msg(frame), conn, c);
      expect(evaluations()).toBe(n + 3);
    }
  });
});
