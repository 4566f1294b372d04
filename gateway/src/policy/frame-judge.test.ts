import { encodeQuery } from '../protocol';
import { FrameJudge } from './frame-judge';
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

const classify = () => ({ statements: [], parse_error: null });

describe('FrameJudge and input_options.connection_identity', () => {
  it('keeps the connection as it is by default', () => {
    const engine = new RecordingEngine({});
    const judge = new FrameJudge(engine, classify, { maxSqlBytes: 1024 });
    const conn = session();
    judge.startup(conn);
    judge.judge(0x51, encodeQuery('SELECT 1'), conn);
    for (const input of engine.inputs) expect(input.connection).toBe(conn);
  });

  it('leaves out id and client_port when the bundle says it never reads them, and follows every other change', () => {
    const engine = new RecordingEngine({ connection_identity: false });
    const judge = new FrameJudge(engine, classify, { maxSqlBytes: 1024 });
    const conn = session();
    judge.startup(conn);
    judge.judge(0x51, encodeQuery('SELECT 1'), conn);
    judge.judge(0x51, encodeQuery('SELECT 2'), conn);
    const [a, b, c] = engine.inputs.map((i) => i.connection);
    expect(a).toEqual({ ...conn, id: '', client_port: 0 });
    expect(Object.keys(a!)).toEqual(Object.keys(conn));
    // One view while nothing changes (its JSON text is kept too).
    expect(b).toBe(a);
    expect(c).toBe(a);
    conn.transaction_status = 'T';
    judge.judge(0x51, encodeQuery('SELECT 3'), conn);
    const d = engine.inputs[3]!.connection;
    expect(d).not.toBe(a);
    expect(d).toMatchObject({ id: '', client_port: 0, transaction_status: 'T' });
    // The session's own object is untouched.
    expect(conn).toMatchObject({ id: 'abc-1', client_port: 50000 });
  });
});
