/**
 * The request phase: every client message after the first ReadyForQuery is decoded once (`read`),
 * the ones that carry SQL or calls are judged as decoded (their SQL text read once, in the
 * encoding the server reads it in), and the original bytes (or a sentinel in place of a denied
 * message) go upstream. Backend answers are matched to what was asked (pipeline.ts) and decide what
 * the statement namespace holds (namespace.ts); the enforcer rewrites the sentinels' errors.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
 */
import { ErrorCodes } from '../errors';
import { redactVerdicts } from '../audit/redact';
// From the modules, not the protocol/ index: its re-exports are getters, run on every use.
import { BackendType, FrontendType, typeTable } from '../protocol/message-types';
import { ProtocolError, malformed } from '../protocol/errors';
import { encodeBackendKeyData, type BackendKeyData } from '../protocol/backend/backend-key-data';
import type { TransactionStatus } from '../protocol/backend/ready-for-query';
import {
  readFrontendMessage,
  type FrontendMessage,
  type JudgedMessage,
} from '../protocol/frontend/frontend-message';
import type { BackendMessage, Close, ErrorResponse, FrontendFrame } from '../protocol';
import {
  FrameJudge,
  deniedByGateway,
  denyWith,
  mayChangeLexicalState,
  type JudgeContext,
  type Judgement,
  type SqlTextDecoder,
  type StatementView,
} from '../policy/frame-judge';
import type { Classification, StatementInfo } from '../sql/types';
import { namesPrepared } from '../sql/frozen';
import {
  DEFAULT_LEXICAL_STATE,
  LEXICAL_SETTINGS,
  applyParameterStatus,
  readSqlText,
  type LexicalRefusal,
  type LexicalState,
  type SqlTextResult,
} from '../sql/lexical';
import {
  checkTripwires,
  emptyServerState,
  updateServerState,
  type JudgedAtStartup,
} from '../policy/tripwires';
import type { DecisionEvent } from './types';
import type { Decision } from '../policy/types';
import { Enforcer, type DeniedType } from '../enforcement/enforcer';
import { StatementNamespace, type Op, type Resolution, type Statement } from './namespace';
import { opsForJudgement } from './judged-ops';
import { Pipeline } from './pipeline';
import { StatementTracker } from './statement-tracker';
import type { SessionCore } from './core';

/** What a client may send during COPY FROM STDIN. */
const COPY_IN_FRAMES = typeTable([
  FrontendType.CopyData,
  FrontendType.CopyDone,
  FrontendType.CopyFail,
  FrontendType.Flush,
  FrontendType.Sync,
  FrontendType.Terminate,
]);

const BACKSLASH = 0x5c;

/** readSql's refusal of a backslash behind an unanswered Bind or Execute of the same cycle. */
const BEHIND_RUN: SqlTextResult = Object.freeze({
  ok: false,
  code: ErrorCodes.SQL_LEXICAL_CHANGING,
  reason:
    'SQL text with a backslash pipelined behind a Bind or Execute the server has not answered: what that ran may have changed how the server reads it (send it after the Sync)',
  sqlstate: '0A000',
});

/** Messages that run SQL or a function (see RequestPhase.mustHold). */
const RUNS = typeTable([
  FrontendType.Query,
  FrontendType.Bind,
  FrontendType.Execute,
  FrontendType.FunctionCall,
]);

/** Whether SQL text may hold an EXECUTE (keywords are ASCII; case-insensitive, comments and all). */
function mayExecute(sql: Buffer): boolean {
  return sql.length >= 7 && /execute/i.test(sql.toString('latin1'));
}

/** Portals remembered for their SQL-level effects; beyond this the map starts again. */
const MAX_PORTALS = 1000;

export class RequestPhase implements StatementView {
  readonly judge: FrameJudge;
  readonly namespace = new StatementNamespace();
  readonly pipeline = new Pipeline(this.namespace);
  readonly enforcer = new Enforcer();
  readonly serverParameters = new Map<string, string>();
  /** The statement each portal was bound to (its SQL-level PREPARE/DEALLOCATE run at Execute). */
  private readonly portals = new Map<string, Statement>();
  private readonly ctx: JudgeContext = {
    view: this as StatementView,
    serverParameters: this.serverParameters,
    // How SQL text is read (readSql): the lexical state, replaced on every change; none while a
    // change is in flight.
    decoderState: () => (this.lexicalInFlight ? null : this.lexical),
  };
  private upstreamKey: { processId: number; secretKey: Buffer } | null = null;
  sawFatal = false;
  /**
   * How the server reads SQL text, as it last reported (`changing` is never set here: see
   * lexicalInFlight). Set from the startup packet, then from every ParameterStatus. Replaced on
   * every change, never changed in place: the judge reuses the text of a repeated frame while this
   * object is the same (FrameJudge's memo, decoderState below).
   */
  lexical: LexicalState = { ...DEFAULT_LEXICAL_STATE };
  /** What the startup decision judged, for the tripwires (set by the startup phase). */
  judgedAtStartup: JudgedAtStartup = { user: '', readOnly: false, superuser: null };
  /**
   * The last cycle in which a message that may change the lexical state was forwarded: the change
   * is in flight until the server ends that cycle (its ReadyForQuery, or the skip after an error).
   */
  private lexicalChangeCycle = -1;
  /** A lexical change was sent since the session was last idle outside a transaction block. */
  private lexicalChangeSent = false;
  /** The last decision recorded, for the audit record of a tripwire ("the frame that preceded it"). */
  private lastDecision: DecisionEvent | null = null;

  constructor(private readonly core: SessionCore) {
    this.judge = new FrameJudge(
      core.deps.engine,
      core.deps.classify,
      { maxSqlBytes: core.deps.limits.maxSqlBytesInInput },
      this.readSql,
    );
    // Statement log: checked once; without it the pipeline carries nothing per message.
    const statementLog = core.deps.statementLog;
    if (statementLog?.enabled) this.pipeline.tracker = new StatementTracker(statementLog, core.conn);
  }

  /**
   * Whether a client message must wait before it is judged and forwarded, while a cycle the client
   * already closed is unanswered (never during COPY FROM STDIN: the server waits for the data):
   *
   * - a Bind of a statement name that is ambiguous until then (a Parse, PREPARE, DEALLOCATE or
   *   Close of it in an earlier cycle may still fail or be skipped): once the server has answered,
   *   the name is certain and the Bind is judged against what the server holds;
   * - in a session the startup decision made read-only, a message that runs something (Query,
   *   Bind, Execute, FunctionCall): a function run in that cycle (in a view, a default, anywhere
   *   pgward cannot see) may have turned default_transaction_read_only off; the server reports
   *   that before the cycle's ReadyForQuery, and the tripwire then ends the session before the
   *   next transaction can start. Inside one cycle PostgreSQL keeps the transaction read-only;
   * - SQL text with a backslash (see below).
   */
  mustHold(m: FrontendMessage): boolean {
    if (this.pipeline.copyIn || this.pipeline.lastEnded >= this.pipeline.cycle - 1) return false;
    const type = m.bytes[0] as number;
    if (this.judgedAtStartup.readOnly && RUNS[type]) return true;
    if (m.name === 'Bind') return this.resolve(m.statement) === 'ambiguous';
    // A simple Query's EXECUTE names a statement too; pgward knows which only after classifying
    // it, so while a statement change of an earlier cycle is unanswered, text that may say
    // EXECUTE waits (rare: simple queries are seldom pipelined) rather than be judged ambiguous.
    if (m.name === 'Query' && this.namespace.namedChangePending && mayExecute(m.sqlBytes)) return true;
    // SQL text with a backslash is the only text another standard_conforming_strings or
    // client_encoding reads differently (every other byte a client-only encoding can swallow into
    // a character is 0x40 or above, so never a quote, comment, dollar or separator); anything an
    // earlier cycle ran (a function, a trigger, a default) may have changed them out of pgward's
    // sight. Such text waits until the server has answered, and is read under what it reported.
    return (m.name === 'Query' || m.name === 'Parse') && m.sqlBytes.includes(BACKSLASH);
  }

  /** A change of client_encoding or standard_conforming_strings is sent and not yet answered. */
  get lexicalInFlight(): boolean {
    return this.pipeline.lastEnded < this.lexicalChangeCycle;
  }

  /**
   * SQL text as the server will read it; while a change is in flight, only text every state reads
   * alike. Within one cycle (nothing can be held there: the server answers at Sync) a backslash
   * behind an unanswered Bind or Execute is refused, for the reason given at mustHold.
   *
   * Depends on the bytes and `lexical` only, but for text with a backslash (BEHIND_RUN), which the
   * judge never reuses: keep it so, or give the judge's decoderState what else it reads.
   */
  private readonly readSql: SqlTextDecoder = (bytes) => {
    if (this.ranInCycle === this.pipeline.cycle && this.pipeline.outstanding > 0 && bytes.includes(BACKSLASH))
      return BEHIND_RUN;
    return readSqlText(bytes, this.lexicalInFlight ? { ...this.lexical, changing: true } : this.lexical);
  };

  /** The cycle in which a Bind or Execute was last forwarded (it may run anything; see readSql). */
  private ranInCycle = -1;

  /** Marks a lexical change in flight when running `statements` may make one. */
  private noteLexical(statements: readonly StatementInfo[] | null): void {
    if (statements !== null && !mayChangeLexicalState(statements, this.lexicalChangeSent)) return;
    this.lexicalChangeCycle = this.pipeline.cycle;
    this.lexicalChangeSent = true;
  }

  get idle(): boolean {
    return this.pipeline.outstanding === 0 && this.enforcer.size === 0 && !this.pipeline.copyIn;
  }

  get outstanding(): number {
    return this.pipeline.outstanding;
  }

  /** The upstream's own cancel key (never shown to the client). */
  get cancelKey(): { processId: number; secretKey: Buffer } | null {
    return this.upstreamKey;
  }

  // ------------------------------------------------------------ StatementView, at the current cycle

  resolve(name: string): Resolution {
    return this.namespace.resolve(name, this.pipeline.cycle);
  }

  expand(c: Classification): Classification {
    return this.namespace.expand(c, this.pipeline.cycle);
  }

  // ------------------------------------------------------------ client messages

  /**
   * Decode once: the one place a client frame of the request phase is read (readFrontendMessage);
   * the typed message, which keeps the original bytes, is what the judge, the enforcer, the audit
   * log and capture see. During COPY FROM STDIN only the copy sub-protocol (and Flush/Sync, which
   * the server ignores there) is accepted, checked by type before anything is read.
   */
  read(frame: FrontendFrame): FrontendMessage {
    if (this.pipeline.copyIn && !COPY_IN_FRAMES[frame.type]) {
      throw new ProtocolError(
        ErrorCodes.PROTOCOL_UNEXPECTED_MESSAGE,
        `unexpected message type ${frame.type} during COPY from stdin`,
      );
    }
    return readFrontendMessage(frame);
  }

  onMessage(m: FrontendMessage): void {
    const core = this.core;
    switch (m.name) {
      case 'Query':
      case 'Parse':
      case 'Bind':
      case 'FunctionCall':
        this.onJudgedMessage(m);
        return;
      case 'Execute': {
        this.observe(m, undefined);
        this.ranInCycle = this.pipeline.cycle;
        const s = this.portals.get(m.portal);
        if (s !== undefined) this.noteLexical(s.ref.statements);
        if (this.pipeline.tracker !== null) this.pipeline.carry = this.pipeline.tracker.execute(m.portal); // statement log
        this.send(m.bytes, this.executeOps(m.portal));
        return;
      }
      case 'Close':
        this.observe(m, undefined);
        this.send(m.bytes, this.closeOps(m));
        return;
      case 'CopyDone':
        // PostgreSQL ignores a body here (CopyGetData does not read it); pgward has always
        // refused one, as it refuses a Sync or Flush with a body: no client sends it.
        if (m.bytes.length !== 5) throw malformed(`CopyDone: ${m.bytes.length - 5} trailing bytes`);
        this.observe(m, undefined);
        this.send(m.bytes, null);
        return;
      case 'Describe':
      case 'Sync':
      case 'Flush':
      case 'CopyData': // opaque by definition
      case 'CopyFail':
        this.observe(m, undefined);
        this.send(m.bytes, null);
        return;
      case 'Terminate':
        this.observe(m, undefined);
        // The core's close sends the upstream its Terminate.
        core.closeOutcome = 'client_terminated';
        core.endClient();
        return;
      default:
        throw new ProtocolError(
          ErrorCodes.PROTOCOL_UNEXPECTED_MESSAGE,
          `unexpected message type ${m.bytes[0] ?? 0} after authentication`,
        );
    }
  }

  /** Capture sees every client message of this phase (judged ones with their SQL as decoded). */
  private observe(m: FrontendMessage, sql: string | undefined, refusal?: LexicalRefusal): void {
    const core = this.core;
    if (core.deps.observer.onFrame)
      core.deps.observer.onFrame('frontend', m.bytes, core.conn, m, sql, refusal);
  }

  private onJudgedMessage(m: JudgedMessage): void {
    const j = this.judge.judge(m, this.core.conn, this.ctx);
    this.observe(m, j.original?.sql, j.refusal);
    this.onJudged(j, m);
    if (m.name === 'Bind') this.ranInCycle = this.pipeline.cycle;
  }

  private send(bytes: Buffer, ops: Op[] | null): void {
    if (ops !== null) for (const op of ops) this.namespace.add(op);
    this.pipeline.sent(bytes[0] as number, ops);
    this.core.toUpstream(bytes);
  }

  private onJudged(j: Judgement, m: JudgedMessage): void {
    const cycle = this.pipeline.cycle;
    const bytes = m.bytes;
    const d = this.decide(j, m);
    if (this.pipeline.tracker !== null) this.pipeline.carry = this.pipeline.tracker.judged(j, d, cycle); // statement log
    if (j.type === 'Bind' && j.resolution === 'absent' && d.error_code === null)
      return this.onMissingStatement(j, bytes);
    if (d.allow) {
      if (j.type === 'Bind') this.bindPortal(j.portalName ?? '', j.resolution);
      this.noteLexical(judgedStatements(j));
      this.send(bytes, opsForJudgement(this.namespace, j, true, cycle));
      return;
    }
    const sentinel = this.enforcer.deny(j.type as DeniedType, d, cycle, j.statementName ?? '');
    if (j.type === 'Bind') this.portals.delete(j.portalName ?? '');
    this.send(sentinel, opsForJudgement(this.namespace, j, false, cycle));
  }

  /**
   * A Bind of a statement the server does not have: the client gets exactly the server's error
   * (26000), and nothing can run. The unnamed statement can only come from Parse, which pgward
   * always sees, so the client's own Bind goes; a named one is replaced (see Enforcer.unknownStatement).
   */
  private onMissingStatement(j: Judgement, bytes: Buffer): void {
    const name = j.statementName ?? '';
    this.portals.delete(j.portalName ?? '');
    if (name === '') this.send(bytes, null);
    else this.send(this.enforcer.unknownStatement(name, this.pipeline.cycle), null);
  }

  private bindPortal(portal: string, r: Resolution | undefined): void {
    if (r === undefined || typeof r === 'string') {
      this.portals.delete(portal);
      return;
    }
    if (this.portals.size >= MAX_PORTALS) this.portals.clear();
    this.portals.set(portal, r);
  }

  /** Execute of a portal whose statement is a PREPARE / DEALLOCATE / DISCARD ALL: confirmed by its tag. */
  private executeOps(portal: string): Op[] | null {
    const s = this.portals.get(portal);
    if (s === undefined) return null;
    const c = s.ref;
    if (!namesPrepared(c.statements)) return null;
    return this.namespace.sqlOps(
      { statements: c.statements, parse_error: c.parse_error },
      this.pipeline.cycle,
    );
  }

  private closeOps(c: Close): Op[] | null {
    if (c.target === 'P') {
      this.portals.delete(c.objectName);
      return null;
    }
    const cycle = this.pipeline.cycle;
    return [{ kind: 'drop', name: c.objectName, entry: null, cycle, tag: null, always: false }];
  }

  /** Evaluates, records, and applies the audit fail-closed rule. */
  decide(j: Judgement, message: FrontendMessage): Decision {
    const { observer, auditFailClosed } = this.core.deps;
    const input = j.input;
    const connection = this.core.conn;
    const frame = message.bytes;
    let d = j.decision;
    const gatewayDenied = deniedByGateway(j);
    let ev: DecisionEvent = {
      decision: d,
      input,
      frame,
      message,
      connection,
      original: j.original,
      gatewayDenied,
    };
    const recorded = observer.onDecision(ev);
    if (d.allow && d.alerts.length > 0 && !recorded && auditFailClosed) {
      d = denyWith(d, ErrorCodes.AUDIT_SINK, 'the audit log cannot record this statement');
      ev = { decision: d, input, frame, message, connection, original: j.original, gatewayDenied };
      observer.onDecision(ev);
    }
    this.lastDecision = ev;
    const log = this.core.log;
    // The process log never quotes the client's text (a parser error's token: redactVerdicts);
    // the audit log has it when literals are not redacted.
    if (d.alerts.length > 0 || !d.allow) {
      const v = redactVerdicts({ denials: [], reasons: d.reasons, alerts: d.alerts });
      if (d.alerts.length > 0) log.warn({ decision: d.id, alerts: v.alerts }, 'policy alert');
      if (!d.allow)
        log.info(
          { decision: d.id, reasons: v.reasons, code: d.error_code, type: input.message.type },
          'denied',
        );
    }
    return d;
  }

  // ------------------------------------------------------------ server messages

  /** An answer the core reads by type only (ParseComplete, BindComplete, RowDescription, …). */
  onAnswer(type: number): null {
    this.reconcile(type, null);
    return null;
  }

  /** ReadyForQuery, whose status the core read in place: the message the server ends every cycle with. */
  onReadyForQuery(status: TransactionStatus, source: Buffer, start: number, end: number): null {
    const core = this.core;
    core.conn.transaction_status = status;
    if (core.deps.observer.onFrame)
      core.deps.observer.onFrame('backend', source.subarray(start, end), core.conn);
    this.reconcile(BackendType.ReadyForQuery, null);
    this.enforcer.settle(this.pipeline.lastEnded);
    if (this.lexicalChangeSent && status === 'I' && !this.lexicalInFlight) this.lexicalChangeSent = false;
    return null;
  }

  /** A backend message the core inspects, decoded once (core.ts DECODED: the ones whose content matters). */
  onBackend(type: number, msg: Buffer, m: BackendMessage): Buffer | null {
    const core = this.core;
    switch (m.name) {
      case 'ReadyForQuery':
        // Read in place by the core (onReadyForQuery): never decoded in this phase.
        return this.onReadyForQuery(m.status, msg, 0, msg.length);
      case 'ErrorResponse':
        return this.onError(m);
      case 'CommandComplete':
        // Decoded only when its tag is read (core.ts, Pipeline.wantsTag).
        this.reconcile(type, m.tag);
        return null;
      case 'ParameterStatus':
        this.serverParameters.set(m.parameter, m.value);
        // Capture keeps the lexical ones: replay reads later SQL text under them, as done here.
        if (core.deps.observer.onFrame && LEXICAL_SETTINGS.has(m.parameter))
          core.deps.observer.onFrame('backend', msg, core.conn);
        return this.onParameterStatus(m.parameter, m.value);
      case 'BackendKeyData':
        return this.onBackendKeyData(m);
      case 'NegotiateProtocolVersion':
        core.startup.protocolMinor = m.newestMinor;
        core.conn.protocol_version = `3.${m.newestMinor}`;
        return null;
      default:
        // Authentication after the startup phase: forwarded as is.
        return null;
    }
  }

  /**
   * The server's report of a GUC_REPORT setting: kept in `connection.server`, checked against the
   * startup judgement (tripwires.ts), and, for the lexical settings, the state SQL text is read
   * under from now on. A lexical change nobody sent (a function that calls set_config inside, say)
   * may have been read under the old state by messages already judged: the session ends.
   */
  private onParameterStatus(name: string, value: string): Buffer | null {
    const core = this.core;
    core.conn.server = Object.freeze(updateServerState(core.conn.server ?? emptyServerState(), name, value));
    const trip = checkTripwires(this.judgedAtStartup, name, value, this.lexical);
    if (trip !== null) {
      core.serverStateDiverged(trip, this.lastDecision);
      return Buffer.alloc(0);
    }
    if (name === 'is_superuser' && this.judgedAtStartup.superuser === null)
      this.judgedAtStartup = { ...this.judgedAtStartup, superuser: value === 'on' };
    if (!LEXICAL_SETTINGS.has(name)) return null;
    const next = applyParameterStatus(this.lexical, name, value);
    if (!next.ok) return null; // a refusal is a tripwire, above
    const changed =
      next.state.clientEncoding !== this.lexical.clientEncoding ||
      next.state.standardConformingStrings !== this.lexical.standardConformingStrings;
    if (changed && core.phase === 'ready' && !this.lexicalInFlight) {
      core.serverStateDiverged(
        {
          code: ErrorCodes.SERVER_STATE_LEXICAL,
          reason: `server state diverged: the server reports ${name} ${value}, changed by no statement pgward judged as changing it`,
        },
        this.lastDecision,
      );
      return Buffer.alloc(0);
    }
    this.lexical = next.state;
    return null;
  }

  private reconcile(type: number, tag: string | null): void {
    if (this.core.phase !== 'ready') return;
    if (!this.pipeline.received(type, tag))
      this.core.upstreamProtocolError(`unexpected ${String.fromCharCode(type)} message from the server`);
  }

  private onError(m: ErrorResponse): Buffer | null {
    const core = this.core;
    const f = m.fields;
    if (core.deps.observer.onFrame) core.deps.observer.onFrame('backend', m.bytes, core.conn, m);
    if (f.severity === 'FATAL' || f.severity === 'PANIC') {
      this.sawFatal = true;
      return null;
    }
    const rep = this.enforcer.rewrite(f);
    // The statement log records the SQLSTATE the client sees (a rewritten sentinel's, too).
    this.reconcile(BackendType.ErrorResponse, rep === null ? f.code : rep.code);
    return rep === null ? null : rep.bytes;
  }

  /**
   * The client is told the upstream's real process id and a secret only pgward knows: 4 bytes in
   * protocol 3.0; in 3.2 the 32 bytes PostgreSQL 18 uses, never fewer than the upstream's.
   */
  private onBackendKeyData(k: BackendKeyData): Buffer {
    this.releaseKey();
    this.upstreamKey = { processId: k.processId, secretKey: k.secretKey };
    const bytes = this.core.startup.protocolMinor >= 2 ? Math.max(32, k.secretKey.length) : 4;
    const mine = this.core.deps.cancel.issue(this.core.opts.cancelTarget, k.processId, bytes);
    return encodeBackendKeyData(k.processId, mine);
  }

  releaseKey(): void {
    if (this.upstreamKey !== null)
      this.core.deps.cancel.release(this.upstreamKey.processId, this.core.opts.cancelTarget);
  }
}

/**
 * The statements a judged message may run (null: unknown, so any of them). A FunctionCall may be
 * set_config by its oid.
 */
function judgedStatements(j: Judgement): readonly StatementInfo[] | null {
  switch (j.type) {
    case 'Query':
    case 'Parse':
      return j.classification?.statements ?? null;
    case 'Bind': {
      const r = j.resolution;
      return r === undefined || typeof r === 'string' ? null : r.ref.statements;
    }
    default:
      return null;
  }
}
