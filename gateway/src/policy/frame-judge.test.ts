import { encodeBind, encodeClose, encodeParse, encodeQuery } from '../protocol';
import { classify, initSqlParser } from '../sql';
import { UNKNOWN_STATEMENT_ERROR } from './input';
import { FrameJudge, mayChangeLexicalState, type JudgeContext } from './frame-judge';
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

function ctx(view = new ReplayStatements()): JudgeContext {
  return { view, serverParameters: new Map() };
}

const unclassified = () => ({ statements: [], parse_error: null });

describe('FrameJudge and input_options.connection_identity', () => {
  it('keeps the connection as it is by default', () => {
    const engine = new RecordingEngine({});
    const judge = new FrameJudge(engine, unclassified, { maxSqlBytes: 1024 });
    const conn = session();
    judge.startup(conn);
    judge.judge(0x51, encodeQuery('SELECT 1'), conn, ctx());
    for (const input of engine.inputs) expect(input.connection).toBe(conn);
  });

  it('leaves out id and client_port when the bundle says it never reads them, and follows every other change', () => {
    const engine = new RecordingEngine({ connection_identity: false });
    const judge = new FrameJudge(engine, unclassified, { maxSqlBytes: 1024 });
    const conn = session();
    judge.startup(conn);
    judge.judge(0x51, encodeQuery('SELECT 1'), conn, ctx());
    judge.judge(0x51, encodeQuery('SELECT 2'), conn, ctx());
    const [a, b, c] = engine.inputs.map((i) => i.connection);
    expect(a).toEqual({ ...conn, id: '', client_port: 0 });
    expect(Object.keys(a!)).toEqual(Object.keys(conn));
    // One view while nothing changes (its JSON text is kept too).
    expect(b).toBe(a);
    expect(c).toBe(a);
    conn.transaction_status = 'T';
    judge.judge(0x51, encodeQuery('SELECT 3'), conn, ctx());
    const d = engine.inputs[3]!.connection;
    expect(d).not.toBe(a);
    expect(d).toMatchObject({ id: '', client_port: 0, transaction_status: 'T' });
    // The session's own object is untouched.
    expect(conn).toMatchObject({ id: 'abc-1', client_port: 50000 });
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
      const j = judge.judge(f[0]!, f, conn, ctx(statements));
      if (j === null) {
        statements.other(f[0]!, f);
        continue;
      }
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
    const j = judge.judge(0x42, bindS('nope'), session(), ctx());
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
      const j = judge.judge(frame[0] as number, frame, conn, ctx())!;
      expect(j.decision).toMatchObject({
        allow: false,
        error_code: 'PGWARD_ERR_SQL_LEXICAL_STRING_SYNTAX',
        sqlstate: '0A000',
      });
      expect(j.classification).toMatchObject({ statements: [] });
      expect(engine.inputs.at(-1)!.parse_error).toMatch(/standard_conforming_strings is off/);
    }
    // Text every state reads alike passes.
    const ok = judge.judge(0x51, encodeQuery('SELECT 1'), conn, ctx())!;
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
