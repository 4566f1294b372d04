/**
 * The policy half of a session, without sockets and without state of its own about statements:
 * it takes the client messages that carry SQL or calls (Query, Parse, Bind, FunctionCall), already
 * decoded once by the caller (protocol readFrontendMessage; the judge cannot take raw bytes),
 * decodes their SQL text with the caller's decoder, builds the input document and evaluates it. What a Bind or an `EXECUTE` means is asked of a
 * `StatementView` the caller owns (the live session: PostgreSQL's namespace as the server
 * confirmed it, plus the changes still pending in the pipeline; replay: the captured session's).
 */
import { ErrorCodes } from '../errors';
import type { Query } from '../protocol/frontend/query';
import type { Parse } from '../protocol/frontend/parse';
import type { Bind, BindParam } from '../protocol/frontend/bind';
import type { JudgedMessage } from '../protocol/frontend/frontend-message';
import type { Classification, StatementInfo } from '../sql/types';
import { LEXICAL_SETTINGS, type LexicalRefusal, type SqlTextResult } from '../sql/lexical';
import {
  buildBindInput,
  buildFunctionCallInput,
  buildParseInput,
  buildQueryInput,
  buildStartupInput,
  type InputOptions,
} from './input';
import { bundleInputOptions } from './input-project';
import type { BundleInfo, ConnectionInfo, Decision, InputDocument, PolicyEngine, PreparedRef } from './types';
import { gatewayDenial } from './decision';
import { namesPrepared, textFreeTemplate } from '../sql/frozen';
import type { Resolution, Statement } from '../session/namespace';

export type JudgedType = 'StartupMessage' | 'Query' | 'Parse' | 'Bind' | 'FunctionCall';

/**
 * Every Judgement is made by `judgement` below, with all its fields present (the optional ones
 * undefined) in one order: one object shape for every message kind, so the session's reads of
 * `j.type`, `j.original`, … stay monomorphic (several shapes make them megamorphic lookups).
 */
export interface Judgement {
  type: JudgedType;
  /** The message judged, as decoded once (null for the startup decision). */
  message: JudgedMessage | null;
  input: InputDocument;
  decision: Decision;
  /**
   * The SQL as sent and its statements with their texts, for audit and replay reports (the input's
   * texts are cut to the configured maximum).
   */
  original?: { sql: string; statements: StatementInfo[] } | undefined;
  /**
   * Query and Parse whose SQL text the decoder refused to read (the decision is denied with its
   * code; `original.sql` is then ''): capture records it, so replay denies what the live session
   * denied even when the text is redacted or the refusal depended on the pipeline.
   */
  refusal?: LexicalRefusal | undefined;
  /** Parse and Bind: the statement name. */
  statementName?: string | undefined;
  /** Parse: the statement it creates when the server accepts it. */
  statement?: Statement | undefined;
  /** Bind: the portal name, and what the statement name meant to the view. */
  portalName?: string | undefined;
  resolution?: Resolution | undefined;
  /** Query and Parse: the classification (its SQL-level PREPARE / DEALLOCATE / DISCARD). */
  classification?: Classification | undefined;
}

/** A Judgement with the optional fields unset (see Judgement). */
export function judgement(
  type: JudgedType,
  message: JudgedMessage | null,
  input: InputDocument,
  decision: Decision,
): Judgement {
  return {
    type,
    message,
    input,
    decision,
    original: undefined,
    refusal: undefined,
    statementName: undefined,
    statement: undefined,
    portalName: undefined,
    resolution: undefined,
    classification: undefined,
  };
}

/** What statement names mean for the message being judged. */
export interface StatementView {
  resolve(name: string): Resolution;
  /** `c` with each EXECUTE's inner statement filled in from the view. */
  expand(c: Classification): Classification;
}

/**
 * The one place where the bytes of a Query's or Parse's SQL text become text: the text the server
 * will parse, or a refusal (the message is then denied with the refusal's code and SQLSTATE, fail
 * closed). The live session passes a decoder bound to its lexical state (sql/lexical.ts
 * readSqlText); the default reads UTF-8, for callers without a session (replay).
 */
export type SqlTextDecoder = (sql: Buffer, serverParameters: ReadonlyMap<string, string>) => SqlTextResult;

export const decodeSqlText: SqlTextDecoder = (sql) => ({ ok: true, sql: sql.toString('utf8') });

export interface JudgeContext {
  view: StatementView;
  serverParameters: ReadonlyMap<string, string>;
  /**
   * What the SQL decoder's result depends on besides the bytes: an object whose identity changes
   * whenever the way SQL text is read changes (the live session: its lexical state), or null while
   * no result may be reused (a change in flight). Absent: texts are never reused.
   */
  decoderState?: () => object | null;
}

/**
 * The last Query or Parse whose work up to the input document can be reused by the next message
 * with the same bytes (a driver re-parsing its unnamed statement, a client repeating a query): the
 * text, its classification and the input document. Only for text without a backslash (the
 * decoder may refuse those depending on the pipeline), decoded without refusal, whose
 * classification the statement view leaves as it is (no PREPARE / EXECUTE / DEALLOCATE /
 * DISCARD), under the same decoder state and input options. The document refers to the live
 * connection, which may have changed since: the decision is taken again only while it has not
 * (Decided), else evaluated again.
 */
interface TextMemo {
  frame: Buffer;
  decoderState: object;
  opts: InputOptions;
  classification: Classification;
  input: InputDocument;
  ref: Statement['ref'] | null;
  /** The judgement's `original`, shared by every repeat (frozen). */
  original: NonNullable<Judgement['original']>;
  /** The decision on `input`, while it may be taken again (see Decided). */
  decided: Decided | null;
}

/**
 * A decision that a later message whose evaluated document is equal may take again, without
 * building the document nor evaluating it (PolicyEngine.again: a new id, a decision-cache hit).
 * Documents are equal when the engine is the same (its BundleInfo), the connection is the same
 * (every field the same value: its nested objects are frozen and replaced, never changed in place,
 * see session/core.ts), and the message part is the same (the caller's key: the frame of a repeated
 * Query or Parse; the prepared statement, portal and parameter shape of a Bind whose values the
 * bundle does not read). Only allowed decisions without alerts or error are kept: a denial, an
 * alert and a failure take the full path every time.
 */
interface Decided {
  bundle: BundleInfo;
  /** A copy of the connection's fields when it was decided. */
  conn: ConnectionInfo;
  decision: Decision;
}

/**
 * Every field of ConnectionInfo, in the order sameConnection compares them. A field added to
 * ConnectionInfo and not here does not compile (Unlisted), and the unit test changes each one
 * listed here and expects a new evaluation.
 */
export const CONNECTION_FIELDS = [
  'transaction_status',
  'authenticated',
  'server',
  'user',
  'database',
  'tls',
  'parameters',
  'options',
  'application_name',
  'protocol_version',
  'client_addr',
  'client_port',
  'id',
] as const;
type Unlisted = Exclude<keyof ConnectionInfo, (typeof CONNECTION_FIELDS)[number]>;
const everyFieldListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyFieldListed;

/** Whether `c` holds the same values as the copy `a` (identity: nested objects are frozen). */
export function sameConnection(a: ConnectionInfo, c: ConnectionInfo): boolean {
  return (
    a.transaction_status === c.transaction_status &&
    a.authenticated === c.authenticated &&
    a.server === c.server &&
    a.user === c.user &&
    a.database === c.database &&
    a.tls === c.tls &&
    a.parameters === c.parameters &&
    a.options === c.options &&
    a.application_name === c.application_name &&
    a.protocol_version === c.protocol_version &&
    a.client_addr === c.client_addr &&
    a.client_port === c.client_port &&
    a.id === c.id
  );
}

/** A Bind's decision kept for the next Bind of the same prepared statement (see Decided). */
interface BindMemo {
  portal: string;
  /** Per parameter: its type oid, format code, and 1 for NULL (the input's parameters without values). */
  shape: number[];
  input: InputDocument;
  decided: Decided;
  /** The judgement's `original` (the statement's text and statements), shared by every repeat (frozen). */
  original: NonNullable<Judgement['original']>;
}

function bindShape(params: readonly BindParam[], types: readonly number[]): number[] {
  const shape: number[] = new Array(params.length * 3);
  for (let i = 0; i < params.length; i++) {
    const p = params[i] as BindParam;
    shape[3 * i] = types[i] ?? 0;
    shape[3 * i + 1] = p.format;
    shape[3 * i + 2] = p.value === null ? 1 : 0;
  }
  return shape;
}

function sameShape(
  shape: readonly number[],
  params: readonly BindParam[],
  types: readonly number[],
): boolean {
  if (shape.length !== params.length * 3) return false;
  for (let i = 0; i < params.length; i++) {
    const p = params[i] as BindParam;
    if (
      shape[3 * i] !== (types[i] ?? 0) ||
      shape[3 * i + 1] !== p.format ||
      shape[3 * i + 2] !== (p.value === null ? 1 : 0)
    )
      return false;
  }
  return true;
}

/** Frames longer than this are not kept for reuse (their bytes would be held per session). */
const MAX_MEMO_FRAME = 4096;

/**
 * A cheap signature of a frame (its length and four words: at the end, before it, in the middle,
 * at a quarter): a memo is made only for a frame whose signature repeats the previous one's of its
 * kind, so text that never repeats (inlined literals) rarely costs a copy. Equal signatures say
 * nothing more: the memo compares whole frames.
 */
function signature(frame: Buffer): number {
  const n = frame.length;
  if (n < 13) return n;
  const mid = n >>> 1;
  const quarter = n >>> 2;
  return (
    (n * 31 +
      frame.readInt32LE(n - 4) * 17 +
      frame.readInt32LE(n - 8) * 13 +
      frame.readInt32LE(mid - 4) * 7 +
      frame.readInt32LE(quarter)) |
    0
  );
}
const BACKSLASH = 0x5c;

export class FrameJudge {
  constructor(
    private readonly engine: PolicyEngine,
    private readonly classify: (sql: string) => Classification,
    private readonly opts: InputOptions,
    private readonly decodeSql: SqlTextDecoder = decodeSqlText,
  ) {}

  startup(conn: ConnectionInfo): Judgement {
    const input = buildStartupInput(conn);
    return judgement('StartupMessage', null, input, this.engine.evaluate(input));
  }

  /** Judges a client message of the ready phase, as decoded once by readFrontendMessage. */
  judge(m: JudgedMessage, session: ConnectionInfo, ctx: JudgeContext): Judgement {
    const opts = this.inputOptions();
    const conn = session;
    switch (m.name) {
      case 'Query':
        return this.query(m, conn, opts, ctx);
      case 'Parse':
        return this.parse(m, conn, opts, ctx);
      case 'Bind':
        return this.bind(m, conn, opts, ctx);
      default: {
        const input = buildFunctionCallInput(conn, { oid: m.oid, args: m.args }, opts);
        return judgement('FunctionCall', m, input, this.engine.evaluate(input));
      }
    }
  }

  private lastQuery: TextMemo | null = null;
  private lastParse: TextMemo | null = null;
  /** The signatures of the last Query and Parse frames judged in full (see signature). */
  private seen = { Query: -1, Parse: -1 };

  /** The memo of the previous message of this kind when `m` can reuse it. */
  private reusable(
    memo: TextMemo | null,
    frame: Buffer,
    conn: ConnectionInfo,
    opts: InputOptions,
    ctx: JudgeContext,
  ): TextMemo | null {
    if (memo === null || memo.opts !== opts || memo.input.connection !== conn) return null;
    if (ctx.decoderState === undefined) return null;
    if (memo.decoderState !== ctx.decoderState() || !memo.frame.equals(frame)) return null;
    return memo;
  }

  /** A memo of this message's work, or null when the next one may not reuse it. */
  private memo(
    frame: Buffer,
    sqlBytes: Buffer,
    text: SqlTextResult,
    c: Classification,
    opts: InputOptions,
    ctx: JudgeContext,
    input: InputDocument,
    ref: Statement['ref'] | null,
  ): TextMemo | null {
    if (!text.ok || ctx.decoderState === undefined || frame.length > MAX_MEMO_FRAME) return null;
    const kind = ref === null ? 'Query' : 'Parse';
    const sig = signature(frame);
    if (this.seen[kind] !== sig) {
      this.seen[kind] = sig;
      return null;
    }
    if (sqlBytes.includes(BACKSLASH) || namesPrepared(c.statements)) return null;
    const decoderState = ctx.decoderState();
    if (decoderState === null) return null;
    // A copy in memory of its own: the frame is a view of the read it came in, and a small
    // Buffer.from would be a slice of a shared pool slab, which holding would pin.
    const own = Buffer.allocUnsafeSlow(frame.length);
    frame.copy(own);
    const original = Object.freeze({ sql: text.sql, statements: c.statements });
    return {
      frame: own,
      decoderState,
      opts,
      classification: c,
      input,
      ref,
      original,
      decided: null,
    };
  }

  /**
   * The judgement of `m`, whose frame repeats the memo's: its decision made again while the
   * connection has not changed (recall), else evaluated again.
   */
  private judgeAgain(memo: TextMemo, m: Query | Parse, conn: ConnectionInfo): Judgement {
    const c = memo.classification;
    let decision = this.recall(memo.decided, conn);
    if (decision === null) {
      decision = this.engine.evaluate(memo.input);
      memo.decided = this.remember(decision, conn);
    }
    const j = judgement(m.name, m, memo.input, decision);
    j.classification = c;
    j.original = memo.original;
    return j;
  }

  /** What a later equal document may take again of `d` (see Decided), or null. */
  private remember(d: Decision, conn: ConnectionInfo): Decided | null {
    const bundle = this.optsFor;
    if (bundle === null || bundle === undefined || this.engine.again === undefined) return null;
    if (!d.allow || d.alerts.length > 0 || d.error_code !== null) return null;
    return { bundle, conn: { ...conn }, decision: d };
  }

  /** `decided` made again when it still holds for `conn` and the active bundle, else null. */
  private recall(decided: Decided | null | undefined, conn: ConnectionInfo): Decision | null {
    if (decided === null || decided === undefined) return null;
    if (decided.bundle !== this.optsFor || !sameConnection(decided.conn, conn)) return null;
    return this.engine.again!(decided.decision);
  }

  private query(m: Query, conn: ConnectionInfo, opts: InputOptions, ctx: JudgeContext): Judgement {
    const again = this.reusable(this.lastQuery, m.bytes, conn, opts, ctx);
    if (again !== null) return this.judgeAgain(again, m, conn);
    const text = this.decodeSql(m.sqlBytes, ctx.serverParameters);
    const sql = text.ok ? text.sql : '';
    const c = text.ok ? ctx.view.expand(this.classify(sql)) : unreadable(text.reason);
    const input = buildQueryInput(conn, sql, c, opts);
    const memo = this.memo(m.bytes, m.sqlBytes, text, c, opts, ctx, input, null);
    this.lastQuery = memo;
    const decision = this.queryDecision(text, c, input, conn, opts);
    if (memo !== null) memo.decided = this.remember(decision, conn);
    const j = judgement('Query', m, input, decision);
    j.classification = c;
    // The memo's (made only for text read as is: the same text and statements).
    j.original = memo !== null ? memo.original : { sql, statements: c.statements };
    if (!text.ok) j.refusal = text;
    return j;
  }

  private parse(p: Parse, conn: ConnectionInfo, opts: InputOptions, ctx: JudgeContext): Judgement {
    const again = this.reusable(this.lastParse, p.bytes, conn, opts, ctx);
    if (again !== null && again.ref !== null) {
      const j = this.judgeAgain(again, p, conn);
      j.statementName = p.statement;
      j.statement = { ref: again.ref, paramTypes: p.paramTypes };
      return j;
    }
    const text = this.decodeSql(p.sqlBytes, ctx.serverParameters);
    const sql = text.ok ? text.sql : '';
    const c = text.ok ? ctx.view.expand(this.classify(sql)) : unreadable(text.reason);
    const input = buildParseInput(
      conn,
      { statementName: p.statement, sql, paramTypes: p.paramTypes },
      c,
      opts,
    );
    const ref = { name: p.statement, sql, statements: c.statements, parse_error: c.parse_error };
    const memo = this.memo(p.bytes, p.sqlBytes, text, c, opts, ctx, input, ref);
    this.lastParse = memo;
    const decision = refused(this.engine.evaluate(input), text);
    if (memo !== null) memo.decided = this.remember(decision, conn);
    const j = judgement('Parse', p, input, decision);
    j.statementName = p.statement;
    j.statement = { ref, paramTypes: p.paramTypes };
    j.classification = c;
    j.original = memo !== null ? memo.original : { sql, statements: c.statements };
    if (!text.ok) j.refusal = text;
    return j;
  }

  /**
   * Query decisions by the shape of their text (the shape cache's frozen template of the
   * statements), for a bundle that reads no SQL text: another text of the same shape makes the
   * same evaluated document, so its decision is taken again (see Decided).
   */
  private readonly shapeMemos = new WeakMap<readonly StatementInfo[], Decided>();

  private queryDecision(
    text: SqlTextResult,
    c: Classification,
    input: InputDocument,
    conn: ConnectionInfo,
    opts: InputOptions,
  ): Decision {
    // The statements as the input holds them (not cut by maxSqlBytes), a shape-cache hit's.
    const shape =
      text.ok && opts.sqlTextRead === false && input.statements === c.statements
        ? textFreeTemplate(c.statements)
        : undefined;
    if (shape === undefined) return refused(this.engine.evaluate(input), text);
    // A template's classification has no parse error (shapeIndependent): the list is the key.
    const again = this.recall(this.shapeMemos.get(shape), conn);
    if (again !== null) return again;
    const d = this.engine.evaluate(input);
    // readsQueryText looks at the statements' own texts only: a template never holds prepared ones.
    const decided = namesPrepared(shape) ? null : this.remember(d, conn);
    if (decided !== null) this.shapeMemos.set(shape, decided);
    else this.shapeMemos.delete(shape);
    return d;
  }

  /** Bind decisions that the next Bind of the same prepared statement may take again. */
  private readonly bindMemos = new WeakMap<PreparedRef, BindMemo>();

  private bind(b: Bind, conn: ConnectionInfo, opts: InputOptions, ctx: JudgeContext): Judgement {
    const r = ctx.view.resolve(b.statement);
    const stmt = typeof r === 'string' ? null : r;
    const types = stmt ? stmt.paramTypes : [];
    // Without values (the bundle reads none), a Bind's document is its connection, portal,
    // statement and parameter shape: a repeat of all four takes the decision again.
    const memoize = stmt !== null && opts.bindParameterValues === false;
    if (memoize) {
      const memo = this.bindMemos.get(stmt.ref);
      if (memo !== undefined && memo.portal === b.portal && sameShape(memo.shape, b.params, types)) {
        const decision = this.recall(memo.decided, conn);
        if (decision !== null) {
          const j = judgement('Bind', b, memo.input, decision);
          j.statementName = b.statement;
          j.portalName = b.portal;
          j.resolution = r;
          j.original = memo.original;
          return j;
        }
      }
    }
    const input = buildBindInput(
      conn,
      {
        portalName: b.portal,
        statement: stmt ? stmt.ref : null,
        params: b.params.map((p, i) => ({ typeOid: types[i] ?? 0, format: p.format, value: p.value })),
      },
      opts,
    );
    let decision = this.engine.evaluate(input);
    const original = stmt ? { sql: stmt.ref.sql, statements: stmt.ref.statements } : undefined;
    if (memoize) {
      const decided = this.remember(decision, conn);
      if (decided !== null)
        this.bindMemos.set(stmt.ref, {
          portal: b.portal,
          shape: bindShape(b.params, types),
          input,
          decided,
          original: Object.freeze(original!),
        });
      else this.bindMemos.delete(stmt.ref);
    }
    if (stmt === null) {
      // Never let a statement pgward cannot name run, whatever the policy says. A name the server
      // does not have gets the server's own error (26000); one pgward cannot tell is denied with
      // 26000 invalid_sql_statement_name too.
      const denied = decision.allow
        ? denyWith(decision, r === 'absent' ? null : ErrorCodes.POLICY_INPUT, whyUnknown(b.statement, r))
        : decision;
      decision = { ...denied, sqlstate: '26000' };
    }
    const j = judgement('Bind', b, input, decision);
    j.statementName = b.statement;
    j.portalName = b.portal;
    j.resolution = r;
    j.original = original;
    return j;
  }

  /** Input options worked out for this BundleInfo (undefined: not yet). */
  private optsFor: BundleInfo | null | undefined = undefined;
  private optsCached: InputOptions | undefined;

  /**
   * The input options for the active bundle (computed once per bundle: this runs for every judged
   * message).
   */
  private inputOptions(): InputOptions {
    const b = this.engine.bundle();
    if (b === this.optsFor && this.optsCached !== undefined) return this.optsCached;
    this.optsFor = b;
    this.optsCached = this.optionsFor(b);
    return this.optsCached;
  }

  /** Bind values are decoded only when the bundle can read them (metadata.pgward.input_paths). */
  private optionsFor(b: BundleInfo | null): InputOptions {
    return bundleInputOptions(this.opts, b);
  }
}

/**
 * Whether the judge denied the message whatever the policy said: SQL text it refused to read, or a
 * Bind of a statement it cannot name (see bind()).
 */
export function deniedByGateway(j: Judgement): boolean {
  if (j.refusal !== undefined) return true;
  return j.type === 'Bind' && (j.resolution === undefined || typeof j.resolution === 'string');
}

function whyUnknown(name: string, r: Resolution): string {
  if (r === 'absent') return `prepared statement "${name}" does not exist`;
  if (r === 'untracked')
    return `prepared statement "${name}" is unknown to pgward (too many prepared statements)`;
  return `prepared statement "${name}" may be one of several statements while earlier requests are unanswered`;
}

/** The classification of SQL text pgward cannot read as the server will: no statements. */
function unreadable(reason: string): Classification {
  return { statements: [], parse_error: reason };
}

/** The decision, denied with the refusal's code and SQLSTATE when the text could not be read. */
function refused(d: Decision, text: SqlTextResult): Decision {
  if (text.ok) return d;
  return { ...denyWith(d, text.code, text.reason), sqlstate: text.sqlstate };
}

const lexicalSetting = (x: { name: string }): boolean =>
  LEXICAL_SETTINGS.has(x.name) || x.name === '*' || x.name === 'all';

/**
 * Whether running these statements may change how the server reads the next SQL text
 * (client_encoding, standard_conforming_strings): a SET / RESET / set_config of either (or of a
 * name not known in advance), RESET ALL, DISCARD ALL, a PREPAREd one run by EXECUTE, SQL run from
 * a string pgward could not read, an EXECUTE of a statement pgward does not know, and — with
 * `afterChange`, once such a change was sent in the session — any transaction statement (COMMIT,
 * ROLLBACK, ROLLBACK TO, … may undo it).
 */
export function mayChangeLexicalState(statements: readonly StatementInfo[], afterChange = false): boolean {
  // Indexed loops: the lists are frozen, and V8 iterates frozen arrays with for-of or some()
  // through its generic iterator (this runs for every Parse, Bind and Execute).
  for (let i = 0; i < statements.length; i++) {
    const s = statements[i] as StatementInfo;
    if (s.node === 'DiscardStmt' || anyLexicalSetting(s.settings)) return true;
    const inner = s.prepared?.inner;
    if (s.prepared?.kind === 'execute' && inner === undefined) return true;
    if (inner && (inner.node === 'DiscardStmt' || anyLexicalSetting(inner.settings))) return true;
    const calls = s.sql_text_calls;
    if (calls !== undefined) for (let k = 0; k < calls.length; k++) if (!calls[k]!.classified) return true;
    if (afterChange && s.transaction !== null) return true;
  }
  return false;
}

function anyLexicalSetting(settings: readonly { name: string }[]): boolean {
  for (let i = 0; i < settings.length; i++) if (lexicalSetting(settings[i]!)) return true;
  return false;
}

export function denyWith(d: Decision, code: Decision['error_code'], reason: string): Decision {
  return {
    ...d,
    allow: false,
    denials: [gatewayDenial(code, reason)],
    reasons: [reason],
    error_code: code,
    sqlstate: null,
  };
}
