/**
 * The policy-relevant half of a session, without sockets: decodes the client frames that carry
 * SQL or calls (Query, Parse, Bind, FunctionCall), keeps the statement registries that give a Bind
 * or an `EXECUTE` its meaning, builds the input document and evaluates it. The live session and
 * offline replay both use it, so a capture replays to exactly the decisions the gateway made.
 */
import { ErrorCodes } from '../errors';
import { FrontendType, typeTable } from '../protocol/message-types';
import { readQuery } from '../protocol/frontend/query';
import { readParse } from '../protocol/frontend/parse';
import { readBind } from '../protocol/frontend/bind';
import { readFunctionCall } from '../protocol/frontend/function-call';
import { readClose } from '../protocol/frontend/portal-messages';
import type { Classification, StatementInfo } from '../sql/types';
import {
  SqlPreparedRegistry,
  buildBindInput,
  buildFunctionCallInput,
  buildParseInput,
  buildQueryInput,
  buildStartupInput,
  type InputOptions,
} from './input';
import type { BundleInfo, ConnectionInfo, Decision, InputDocument, PolicyEngine, PreparedRef } from './types';

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
  /** Parse: the statement name (a denied Parse is replaced by one of the same name). */
  statementName?: string;
  /** Parse: the declared parameter type OIDs (they give a later Bind's values their types). */
  paramTypes?: readonly number[];
  /** The classification to apply to the registries when the message is allowed. */
  classification?: Classification;
}

interface ExtStatement {
  ref: PreparedRef;
  paramTypes: readonly number[];
}

/** The frame types that get a decision (and so an input). */
const JUDGED = typeTable([
  FrontendType.Query,
  FrontendType.Parse,
  FrontendType.Bind,
  FrontendType.FunctionCall,
]);

export class FrameJudge {
  private readonly statements = new Map<string, ExtStatement>();
  private readonly sqlPrepared = new SqlPreparedRegistry();

  constructor(
    private readonly engine: PolicyEngine,
    private readonly classify: (sql: string) => Classification,
    private readonly opts: InputOptions,
  ) {}

  startup(conn: ConnectionInfo): Judgement {
    const input = buildStartupInput(this.connectionFor(conn, this.inputOptions()));
    return { type: 'StartupMessage', input, decision: this.engine.evaluate(input) };
  }

  /**
   * Judges a client frame of the ready phase. Returns null for frames that are not judged (after
   * applying what they change: Close of a statement).
   */
  judge(type: number, frame: Buffer, session: ConnectionInfo): Judgement | null {
    const opts = this.inputOptions();
    const conn = JUDGED[type] ? this.connectionFor(session, opts) : session;
    switch (type) {
      case FrontendType.Query: {
        const q = readQuery(frame);
        const c = this.sqlPrepared.expand(this.classify(q.sql));
        const input = buildQueryInput(conn, q.sql, c, opts);
        return {
          type: 'Query',
          input,
          decision: this.engine.evaluate(input),
          classification: c,
          original: { sql: q.sql, statements: c.statements },
        };
      }
      case FrontendType.Parse: {
        const p = readParse(frame);
        const c = this.sqlPrepared.expand(this.classify(p.sql));
        const input = buildParseInput(
          conn,
          { statementName: p.statement, sql: p.sql, paramTypes: p.paramTypes },
          c,
          opts,
        );
        const j: Judgement = {
          type: 'Parse',
          input,
          decision: this.engine.evaluate(input),
          statementName: p.statement,
          paramTypes: p.paramTypes,
          classification: c,
          original: { sql: p.sql, statements: c.statements },
        };
        return j;
      }
      case FrontendType.Bind: {
        const b = readBind(frame);
        const stmt = this.statementFor(b.statement);
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
        if (!stmt) {
          // pgward cannot know what an unknown statement would run: never let it through, whatever
          // the policy says, and answer as the server would (26000 invalid_sql_statement_name).
          const denied = decision.allow
            ? denyWith(
                decision,
                ErrorCodes.POLICY_INPUT,
                `prepared statement "${b.statement}" is unknown to pgward`,
              )
            : decision;
          decision = { ...denied, sqlstate: '26000' };
        }
        const original = stmt ? { sql: stmt.ref.sql, statements: stmt.ref.statements } : undefined;
        return original ? { type: 'Bind', input, decision, original } : { type: 'Bind', input, decision };
      }
      case FrontendType.FunctionCall: {
        const f = readFunctionCall(frame);
        const input = buildFunctionCallInput(conn, { oid: f.oid, args: f.args }, opts);
        return { type: 'FunctionCall', input, decision: this.engine.evaluate(input) };
      }
      case FrontendType.Close: {
        const c = readClose(frame);
        if (c.target === 'S') {
          this.statements.delete(c.objectName);
          this.sqlPrepared.forget(c.objectName);
        }
        return null;
      }
      default:
        return null;
    }
  }

  /**
   * What a Bind of `name` runs, as far as pgward knows; undefined when it does not know. Named
   * statements (Parse and SQL PREPARE share one namespace on the server) are answered by the
   * registry, which sees every PREPARE, DEALLOCATE, DISCARD, Parse and Close and marks a name
   * ambiguous when it is defined twice (the server refuses the second definition); `statements`
   * only adds the Parse's full text and parameter types while it still describes that same entry.
   */
  private statementFor(name: string): ExtStatement | undefined {
    if (name === '') return this.statements.get('');
    const inner = this.sqlPrepared.lookup(name);
    if (inner === undefined) return undefined;
    const known = this.statements.get(name);
    if (known !== undefined && known.ref.statements.length === 1 && known.ref.statements[0] === inner)
      return known;
    const ref = this.sqlPrepared.toPreparedRef(name);
    if (ref === null) return undefined;
    const made: ExtStatement = { ref, paramTypes: [] };
    this.statements.set(name, made);
    return made;
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

  /**
   * Applies a judged message's effect on the registries once its fate is final (`allowed` may be
   * false for an allowed decision turned into a denial, e.g. when the audit log cannot record it).
   */
  settle(j: Judgement, allowed: boolean): void {
    const c = j.classification;
    if (j.type === 'Query') {
      // A simple Query destroys the unnamed statement, whatever it runs (a denied one included).
      this.statements.delete('');
      if (allowed && c) this.sqlPrepared.observe(c);
      return;
    }
    if (j.type === 'Parse') {
      const name = j.statementName ?? '';
      if (allowed && c && j.original) {
        this.statements.set(name, {
          ref: { name, sql: j.original.sql, statements: c.statements, parse_error: c.parse_error },
          paramTypes: j.paramTypes ?? [],
        });
        // Protocol-level and SQL-level prepared statements share one namespace on the server.
        this.sqlPrepared.observeParse(name, c);
        this.sqlPrepared.observe(c);
      } else if (name === '') {
        // The server drops the unnamed statement on any unnamed Parse, failed or not.
        this.statements.delete('');
      }
    }
  }
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

export function denyWith(d: Decision, code: Decision['error_code'], reason: string): Decision {
  return { ...d, allow: false, reasons: [reason], error_code: code, sqlstate: null };
}
