/**
 * In-process driver for SessionCore scenarios: events in, actions and bytes out. No sockets, ports
 * or timers. Backend answers are written as PostgreSQL 15 sends them (checked against the real
 * server by the integration suites in tests/policy and tests/session).
 */
import pino from 'pino';
import { MessageWriter, encodeStartupMessage, PROTOCOL_3_0, encodeErrorResponse } from '../protocol';
import { classify } from '../sql';
import type { BundleInfo, Decision, InputDocument, PolicyEngine } from '../policy/types';
import type { Classification, StatementInfo } from '../sql/types';
import { CancelRegistry } from './cancel-registry';
import { SessionCore } from './core';
import type { Action, Refusal } from './actions';
import type { DecisionEvent, DivergenceEvent, SessionDeps, SessionStatementLog } from './types';

/** Denies any statement (or EXECUTEd inner statement) that is a DELETE, and FunctionCall of oid 666. */
export class RuleEngine implements PolicyEngine {
  readonly inputs: InputDocument[] = [];
  denyAll = false;
  /** What a startup decision pins (the shipped bundle pins default_transaction_read_only for read-only users). */
  sessionParameters: Record<string, string> = {};
  private n = 0;
  evaluate(input: InputDocument): Decision {
    this.inputs.push(input);
    const reasons: string[] = [];
    const bad = (s: StatementInfo): boolean =>
      s.command === 'DELETE' || (s.prepared?.inner ? bad(s.prepared.inner) : false);
    if (this.denyAll && input.message.type !== 'StartupMessage') reasons.push('everything is denied');
    if (input.statements.some(bad)) reasons.push('DELETE is denied');
    if (input.message.type === 'FunctionCall' && input.message.function_oid === 666)
      reasons.push('function 666');
    if (input.connection.user === 'mallory') reasons.push('user mallory');
    return {
      id: `d${++this.n}`,
      allow: reasons.length === 0,
      denials: reasons.map((message) => ({ rule: 'harness', message, priority: 0 })),
      reasons,
      alerts: [],
      sqlstate: null,
      session_parameters: input.message.type === 'StartupMessage' ? this.sessionParameters : {},
      revision: 'r',
      error_code: null,
      eval_seconds: 0,
    };
  }
  bundle(): BundleInfo {
    return { revision: 'r', entrypoint: 'pgward/decision', source: 's', loaded_at: '', opa_version: null };
  }
}

export interface Msg {
  type: string;
  body: Buffer;
}

/** Splits bytes into typed messages. */
export function messages(bytes: Buffer): Msg[] {
  const out: Msg[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (bytes.length - pos < 5) {
      // A one-byte SSLRequest/GSSENCRequest answer.
      out.push({ type: String.fromCharCode(bytes[pos] as number), body: Buffer.alloc(0) });
      break;
    }
    const len = bytes.readInt32BE(pos + 1);
    out.push({
      type: String.fromCharCode(bytes[pos] as number),
      body: bytes.subarray(pos + 5, pos + 1 + len),
    });
    pos += 1 + len;
  }
  return out;
}

export const types = (ms: Msg[]): string => ms.map((m) => m.type).join('');

/**
 * The fields of an ErrorResponse body, by code letter. Any other message (a body that does not
 * end its fields with a NUL) throws rather than loop: an expectation on the wrong message must
 * fail, not hang the test run.
 */
export function fields(m: Msg): Record<string, string> {
  const f: Record<string, string> = {};
  let pos = 0;
  while (m.body[pos] !== 0) {
    if (pos >= m.body.length) throw new Error(`not an ErrorResponse/NoticeResponse body: '${m.type}'`);
    const code = String.fromCharCode(m.body[pos] as number);
    const end = m.body.indexOf(0, pos + 1);
    if (end === -1) throw new Error(`not an ErrorResponse/NoticeResponse body: '${m.type}'`);
    f[code] = m.body.toString('utf8', pos + 1, end);
    pos = end + 1;
  }
  return f;
}

/** Backend messages as PostgreSQL writes them. */
export const pg = {
  authOk: (): Buffer => new MessageWriter().int32(0).message('R'),
  keyData: (pid: number, secret: Buffer): Buffer => new MessageWriter().int32(pid).bytes(secret).message('K'),
  param: (name: string, value: string): Buffer =>
    new MessageWriter().cstring(name).cstring(value).message('S'),
  ready: (status: 'I' | 'T' | 'E' = 'I'): Buffer =>
    new MessageWriter().int8(status.charCodeAt(0)).message('Z'),
  parseComplete: (): Buffer => new MessageWriter().message('1'),
  bindComplete: (): Buffer => new MessageWriter().message('2'),
  closeComplete: (): Buffer => new MessageWriter().message('3'),
  noData: (): Buffer => new MessageWriter().message('n'),
  emptyQuery: (): Buffer => new MessageWriter().message('I'),
  portalSuspended: (): Buffer => new MessageWriter().message('s'),
  paramDescription: (): Buffer => new MessageWriter().int16(0).message('t'),
  rowDescription: (): Buffer =>
    new MessageWriter()
      .int16(1)
      .cstring('x')
      .int32(0)
      .int16(0)
      .int32(23)
      .int16(4)
      .int32(-1)
      .int16(0)
      .message('T'),
  dataRow: (v: string): Buffer =>
    new MessageWriter().int16(1).int32(Buffer.byteLength(v)).bytes(Buffer.from(v)).message('D'),
  complete: (tag: string): Buffer => new MessageWriter().cstring(tag).message('C'),
  copyIn: (): Buffer => new MessageWriter().int8(0).int16(0).message('G'),
  copyOut: (): Buffer => new MessageWriter().int8(0).int16(0).message('H'),
  copyData: (v: string): Buffer => new MessageWriter().bytes(Buffer.from(v)).message('d'),
  copyDone: (): Buffer => new MessageWriter().message('c'),
  error: (code: string, message: string, severity = 'ERROR'): Buffer =>
    encodeErrorResponse({ severity, severityNonLocalized: severity, code, message }),
};

/** What the server says to a sentinel (a Parse or Query of the token text): a syntax error quoting it. */
export function syntaxErrorFor(sentUpstream: Msg): Buffer {
  const text = sentUpstream.body.toString('utf8');
  const token = /pgward_denied_[0-9a-f]+_[0-9a-z]+/.exec(text)?.[0] ?? '';
  return pg.error('42601', `syntax error at or near "${token}"`);
}

/** The server's answer to a Bind of a statement it does not have. */
export function missingStatementFor(sentUpstream: Msg): Buffer {
  const name = sentUpstream.body.toString(
    'utf8',
    sentUpstream.body.indexOf(0) + 1,
    sentUpstream.body.indexOf(0, sentUpstream.body.indexOf(0) + 1),
  );
  return encodeErrorResponse({
    severity: 'ERROR',
    severityNonLocalized: 'ERROR',
    code: '26000',
    message: `prepared statement "${name}" does not exist`,
    raw: {},
  });
}

export interface HarnessOptions {
  /** The engine and classifier the session uses (default: the RuleEngine below, classify). */
  engine?: PolicyEngine;
  classify?: (sql: string) => Classification;
  refusal?: Refusal | null;
  tls?: boolean;
  requireTls?: boolean;
  maxUnauthenticated?: number;
  statementLog?: SessionStatementLog;
}

export class Harness {
  readonly engine = new RuleEngine();
  readonly decisions: DecisionEvent[] = [];
  readonly errors: string[] = [];
  readonly diverged: DivergenceEvent[] = [];
  readonly closed: string[] = [];
  readonly cancels: object[] = [];
  readonly deps: SessionDeps;
  readonly core: SessionCore;
  readonly cancelTarget = { cancelUpstream: (): void => undefined };
  actions: Action[] = [];

  constructor(opts: HarnessOptions = {}, registry = new CancelRegistry()) {
    this.deps = {
      logger: pino({ level: 'silent' }),
      engine: opts.engine ?? this.engine,
      classify: opts.classify ?? classify,
      cancel: registry,
      upstream: { host: '127.0.0.1', port: 1, connectTimeoutMs: 1000, tls: { mode: 'disable' } },
      clientTls: {
        context: opts.tls ? ({} as never) : null,
        require: opts.requireTls ?? false,
        requestCert: false,
        certDer: null,
      },
      limits: { maxMessageBytes: 1 << 20, loginTimeoutMs: 5000, maxSqlBytesInInput: 4096 },
      observer: {
        onDecision: (ev) => {
          this.decisions.push(ev);
          return true;
        },
        onError: (code) => void this.errors.push(code),
        onServerStateDiverged: (ev) => void this.diverged.push(ev),
        onConnectionOpened: () => undefined,
        onConnectionClosed: (outcome) => void this.closed.push(outcome),
        onAuthenticated: () => undefined,
        onBytes: () => undefined,
        onUpstreamConnectError: () => undefined,
      },
      auditFailClosed: false,
      onClose: () => undefined,
      frameCounts: { frontend: new Float64Array(256), backend: new Float64Array(256) },
      unauthenticated: { count: 0, max: opts.maxUnauthenticated ?? 10 },
      statementLog: opts.statementLog,
    };
    this.core = new SessionCore(this.deps, {
      clientAddr: '10.0.0.1',
      clientPort: 5000,
      cancelTarget: this.cancelTarget,
      refusal: opts.refusal ?? null,
    });
    this.take();
  }

  take(): Action[] {
    const a = this.core.takeActions();
    this.actions.push(...a);
    return a;
  }

  /** Client bytes in (one read); returns [bytes sent upstream as messages, bytes sent to the client]. */
  client(...frames: Buffer[]): { up: Msg[]; down: Msg[]; actions: Action[] } {
    this.core.clientData(Buffer.concat(frames));
    return this.split(this.take());
  }

  /** Server bytes in; returns what the client gets. */
  server(...msgs: Buffer[]): { up: Msg[]; down: Msg[]; actions: Action[] } {
    this.core.serverData(Buffer.concat(msgs));
    return this.split(this.take());
  }

  split(actions: Action[]): { up: Msg[]; down: Msg[]; actions: Action[] } {
    const up: Buffer[] = [];
    const down: Buffer[] = [];
    for (const a of actions) {
      if (a.kind === 'writeUpstream') up.push(...a.data);
      if (a.kind === 'writeClient') down.push(...a.data);
    }
    return { up: messages(Buffer.concat(up)), down: messages(Buffer.concat(down)), actions };
  }

  /**
   * Startup through the first ReadyForQuery. `reports`: the ParameterStatus messages the server
   * sends before it (client_encoding UTF8 by default).
   */
  login(
    user = 'app',
    pid = 4242,
    secret = Buffer.from([1, 2, 3, 4]),
    reports: Array<[string, string]> = [['client_encoding', 'UTF8']],
  ): Msg[] {
    this.client(
      encodeStartupMessage(
        PROTOCOL_3_0,
        new Map([
          ['user', user],
          ['database', 'app'],
        ]),
      ),
    );
    this.core.upstreamConnected({ tls: false, channelBindingHonoured: false });
    this.take();
    return this.server(
      pg.authOk(),
      ...reports.map(([n, v]) => pg.param(n, v)),
      pg.keyData(pid, secret),
      pg.ready(),
    ).down;
  }
}
