/**
 * The policy half of a session, without sockets and without state of its own about statements:
 * it decodes the client frames that carry SQL or calls (Query, Parse, Bind, FunctionCall), builds
 * the input document and evaluates it. What a Bind or an `EXECUTE` means is asked of a
 * `StatementView` the caller owns (the live session: PostgreSQL's namespace as the server
 * confirmed it, plus the changes still pending in the pipeline; replay: the captured session's).
 */
import { ErrorCodes } from '../errors';
import { FrontendType, typeTable } from '../protocol/message-types';
import { readQuery } from '../protocol/frontend/query';
import { readParse } from '../protocol/frontend/parse';
import { readBind } from '../protocol/frontend/bind';
import { readFunctionCall } from '../protocol/frontend/function-call';
import type { Classification, StatementInfo } from '../sql/types';
import { LEXICAL_SETTINGS, type SqlTextResult } from '../sql/lexical';
import {
  buildBindInput,
  buildFunctionCallInput,
  buildParseInput,
  buildQueryInput,
  buildStartupInput,
  type InputOptions,
} from './input';
import type { BundleInfo, ConnectionInfo, Decision, InputDocument, PolicyEngine } from './types';
import { gatewayDenial } from './decision';
import type { Resolution, Statement } from '../session/namespace';

export type JudgedType = 'StartupMessage' | 'Query' | 'Parse' | 'Bind' | 'FunctionCall';

export interface Judgement {
  type: JudgedType;
  input: InputDocument;
  decision: Decision;
  /**
   * The SQL as sent and its statements with their texts, for audit and replay reports: the input
   * has no SQL text when the bundle declared it never reads any (input_options.sql_text).
   */
  original?: { sql: string; statements: StatementInfo[] };
  /** Parse and Bind: the statement name. */
  statementName?: string;
  /** Parse: the statement it creates when the server accepts it. */
  statement?: Statement;
  /** Bind: the portal name, and what the statement name meant to the view. */
  portalName?: string;
  resolution?: Resolution;
  /** Query and Parse: the classification (its SQL-level PREPARE / DEALLOCATE / DISCARD). */
  classification?: Classification;
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
}

/** The frame types that get a decision (and so an input). */
const JUDGED = typeTable([
  FrontendType.Query,
  FrontendType.Parse,
  FrontendType.Bind,
  FrontendType.FunctionCall,
]);

export class FrameJudge {
  constructor(
    private readonly engine: PolicyEngine,
    private readonly classify: (sql: string) => Classification,
    private readonly opts: InputOptions,
    private readonly decodeSql: SqlTextDecoder = decodeSqlText,
  ) {}

  startup(conn: ConnectionInfo): Judgement {
    const input = buildStartupInput(this.connectionFor(conn, this.inputOptions()));
    return { type: 'StartupMessage', input, decision: this.engine.evaluate(input) };
  }

  /** Judges a client frame of the ready phase; null for frames that are not judged. */
  judge(type: number, frame: Buffer, session: ConnectionInfo, ctx: JudgeContext): Judgement | null {
    if (!JUDGED[type]) return null;
    const opts = this.inputOptions();
    const conn = this.connectionFor(session, opts);
    switch (type) {
      case FrontendType.Query:
        return this.query(frame, conn, opts, ctx);
      case FrontendType.Parse:
        return this.parse(frame, conn, opts, ctx);
      case FrontendType.Bind:
        return this.bind(frame, conn, opts, ctx);
      default: {
        const f = readFunctionCall(frame);
        const input = buildFunctionCallInput(conn, { oid: f.oid, args: f.args }, opts);
        return { type: 'FunctionCall', input, decision: this.engine.evaluate(input) };
      }
    }
  }

  private query(frame: Buffer, conn: ConnectionInfo, opts: InputOptions, ctx: JudgeContext): Judgement {
    readQuery(frame);
    const text = this.decodeSql(frame.subarray(5, frame.length - 1), ctx.serverParameters);
    const sql = text.ok ? text.sql : '';
    const c = text.ok ? ctx.view.expand(this.classify(sql)) : unreadable(text.reason);
    const input = buildQueryInput(conn, sql, c, opts);
    return {
      type: 'Query',
      input,
      decision: refused(this.engine.evaluate(input), text),
      classification: c,
      original: { sql, statements: c.statements },
    };
  }

  private parse(frame: Buffer, conn: ConnectionInfo, opts: InputOptions, ctx: JudgeContext): Judgement {
    const p = readParse(frame);
    const nameEnd = frame.indexOf(0, 5);
    const text = this.decodeSql(
      frame.subarray(nameEnd + 1, frame.indexOf(0, nameEnd + 1)),
      ctx.serverParameters,
    );
    const sql = text.ok ? text.sql : '';
    const c = text.ok ? ctx.view.expand(this.classify(sql)) : unreadable(text.reason);
    const input = buildParseInput(
      conn,
      { statementName: p.statement, sql, paramTypes: p.paramTypes },
      c,
      opts,
    );
    return {
      type: 'Parse',
      input,
      decision: refused(this.engine.evaluate(input), text),
      statementName: p.statement,
      statement: {
        ref: { name: p.statement, sql, statements: c.statements, parse_error: c.parse_error },
        paramTypes: p.paramTypes,
      },
      classification: c,
      original: { sql, statements: c.statements },
    };
  }

  private bind(frame: Buffer, conn: ConnectionInfo, opts: InputOptions, ctx: JudgeContext): Judgement {
    const b = readBind(frame);
    const r = ctx.view.resolve(b.statement);
    const stmt = typeof r === 'string' ? null : r;
    const types = stmt ? stmt.paramTypes : [];
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
    if (stmt === null) {
      // Never let a statement pgward cannot name run, whatever the policy says. A name the server
      // does not have gets the server's own error (26000); one pgward cannot tell is denied with
      // 26000 invalid_sql_statement_name too.
      const denied = decision.allow
        ? denyWith(decision, r === 'absent' ? null : ErrorCodes.POLICY_INPUT, whyUnknown(b.statement, r))
        : decision;
      decision = { ...denied, sqlstate: '26000' };
    }
    const j: Judgement = {
      type: 'Bind',
      input,
      decision,
      statementName: b.statement,
      portalName: b.portal,
      resolution: r,
    };
    if (stmt) j.original = { sql: stmt.ref.sql, statements: stmt.ref.statements };
    return j;
  }

  /** The connection as the input shows it (see connectionFor). */
  private view: ConnectionInfo | null = null;

  /**
   * The session's connection, or — when the bundle declared it never reads `connection.id` nor
   * `client_port` — a copy with those blanked, kept while no other field changes (so that its
   * JSON text is kept too, policy/input-json.ts).
   */
  private connectionFor(conn: ConnectionInfo, opts: InputOptions): ConnectionInfo {
    if (opts.connectionIdentity !== false) return conn;
    const v = this.view;
    if (v !== null && sameApartFromIdentity(v, conn)) return v;
    this.view = { ...conn, id: '', client_port: 0 };
    return this.view;
  }

  /** Input options worked out for this BundleInfo (undefined: not yet). */
  private optsFor: BundleInfo | null | undefined = undefined;
  private optsCached: InputOptions | undefined;

  /**
   * The input options, with what the active bundle declared it never reads left out (computed
   * once per bundle: this runs for every judged message).
   */
  private inputOptions(): InputOptions {
    const b = this.engine.bundle();
    if (b === this.optsFor && this.optsCached !== undefined) return this.optsCached;
    this.optsFor = b;
    this.optsCached = this.optionsFor(b);
    return this.optsCached;
  }

  private optionsFor(b: BundleInfo | null): InputOptions {
    if (
      b === null ||
      (b.bind_parameter_values !== false && b.sql_text !== false && b.connection_identity !== false)
    )
      return this.opts;
    return {
      ...this.opts,
      ...(b.bind_parameter_values === false ? { bindParameterValues: false } : {}),
      ...(b.sql_text === false ? { sqlText: false } : {}),
      ...(b.connection_identity === false ? { connectionIdentity: false } : {}),
    };
  }
}

function whyUnknown(name: string, r: Resolution): string {
  if (r === 'absent') return `prepared statement "${name}" does not exist`;
  if (r === 'untracked')
    return `prepared statement "${name}" is unknown to pgward (too many prepared statements)`;
  return `prepared statement "${name}" may be one of several statements while earlier requests are unanswered`;
}

/** Whether `view` shows `conn` exactly, but for `id` and `client_port`. */
function sameApartFromIdentity(view: ConnectionInfo, conn: ConnectionInfo): boolean {
  const v = view as unknown as Record<string, unknown>;
  const c = conn as unknown as Record<string, unknown>;
  let n = 0;
  for (const k in c) {
    n++;
    if (k !== 'id' && k !== 'client_port' && v[k] !== c[k]) return false;
  }
  return n === Object.keys(v).length;
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
  for (const s of statements) {
    if (s.node === 'DiscardStmt' || s.settings.some(lexicalSetting)) return true;
    const inner = s.prepared?.inner;
    if (s.prepared?.kind === 'execute' && inner === undefined) return true;
    if (inner && (inner.node === 'DiscardStmt' || inner.settings.some(lexicalSetting))) return true;
    if (s.sql_text_calls?.some((x) => !x.classified)) return true;
    if (afterChange && s.transaction !== null) return true;
  }
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
