/**
 * The statement log's view of a session (statement_log.enabled): which record each backend answer
 * belongs to. The pipeline (pipeline.ts) already matches every answer to the forwarded message it
 * answers; a message that starts a statement carries its record on that pipeline entry, and the
 * pipeline tells this tracker what happened to the entry.
 *
 *   Query, FunctionCall  one record; each CommandComplete adds a tag (a multi-statement Query gets
 *                        one per statement); its ErrorResponse fails it; ends with its ReadyForQuery
 *   Bind                 one record (the SQL of the statement it binds), also carried by each
 *                        Execute of its portal: the Execute's CommandComplete or EmptyQueryResponse
 *                        ends it (PortalSuspended does not); an ErrorResponse of the Bind or an
 *                        Execute fails it; otherwise it ends at the first ReadyForQuery outside a
 *                        transaction block after its cycle (portals end with their transaction)
 *   Parse                only a denied one (an allowed Parse runs nothing)
 *   denied message       written at once as `denied`; its sentinel's entry carries nothing, so the
 *                        sentinel's error is never taken for a server error of another statement
 *   skipped              an entry the server skipped after an earlier error (skip-until-Sync)
 *                        writes its record as `skipped`
 *
 * Durations are measured by the statement log's own clock (its `now` dependency): the core stays
 * timer- and clock-free. Without a statement log the pipeline has no tracker and nothing here runs.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
 */
import type { Judgement } from '../policy/frame-judge';
import type { ConnectionInfo, Decision } from '../policy/types';
import type { SessionStatementHandle, SessionStatementLog } from './types';

/** Bind records held open waiting for an Execute; beyond this the oldest is finished. */
const MAX_OPEN_BINDS = 1024;

/** One statement record and the pipeline entries that still answer it. */
export interface Tracked {
  readonly handle: SessionStatementHandle;
  /** The cycle of the message that started it. */
  readonly cycle: number;
  /** Bind: the portal it bound; null otherwise. */
  readonly portal: string | null;
  /** Entries carrying it whose answer has not come (the Bind, its Executes). */
  pending: number;
  done: boolean;
}

export class StatementTracker {
  /** The open Bind record of each portal (Executes of the portal carry it). */
  private readonly portals = new Map<string, Tracked>();
  /** Bind records not finished, oldest first. */
  private binds: Tracked[] = [];

  constructor(
    private readonly log: SessionStatementLog,
    private readonly conn: ConnectionInfo,
  ) {}

  /**
   * A judged message and its decision: starts its record (Query, Bind, FunctionCall; a Parse only
   * when denied). Returns what its pipeline entry carries: null for a denied message (its record
   * is complete) and for an allowed Parse.
   */
  judged(j: Judgement, d: Decision, cycle: number): Tracked | null {
    if (j.type === 'Parse' && d.allow) return null;
    const m = j.input.message;
    const handle = this.log.statementStarted({
      connection: this.conn,
      message_type: j.type,
      sql: j.original?.sql ?? m.sql ?? m.statement?.sql ?? null,
      statements: j.original?.statements ?? j.input.statements,
      parse_error: j.input.parse_error,
      decision: d,
    });
    const portal = j.type === 'Bind' ? (j.portalName ?? '') : null;
    if (portal !== null) {
      // A new Bind of a portal replaces it (the server drops the old unnamed portal, or refuses a
      // named one in use: either way later Executes are not the old record's).
      const old = this.portals.get(portal);
      if (old !== undefined) {
        this.portals.delete(portal);
        if (old.pending === 0) this.finish(old);
      }
    }
    if (!d.allow) return null;
    const t: Tracked = { handle, cycle, portal, pending: 1, done: false };
    if (portal !== null) {
      this.portals.set(portal, t);
      this.binds.push(t);
      if (this.binds.length > MAX_OPEN_BINDS) this.finish(this.binds.shift() as Tracked);
    }
    return t;
  }

  /** An Execute of `portal` is forwarded: its entry carries the portal's open Bind record. */
  execute(portal: string): Tracked | null {
    const t = this.portals.get(portal);
    if (t === undefined || t.done) return null;
    t.pending++;
    return t;
  }

  // ------------------------------------------------------------ told by the pipeline

  /** A CommandComplete (tag), EmptyQueryResponse or PortalSuspended (null) answering the entry. */
  command(t: Tracked, tag: string | null): void {
    if (tag !== null && tag !== '') t.handle.completed({ command_tag: tag });
  }

  /** A Bind entry's BindComplete; an Execute's PortalSuspended (the portal can run on). */
  answered(t: Tracked): void {
    t.pending--;
  }

  /** The ErrorResponse answering the entry. */
  failed(t: Tracked, sqlstate: string): void {
    t.handle.failed({ sqlstate });
  }

  /** The entry ran to its end (its last answer, its error, or its ReadyForQuery). */
  ended(t: Tracked): void {
    this.finish(t);
  }

  /** The server skipped the entry (an earlier error in its cycle): the statement never ran. */
  skipped(t: Tracked): void {
    if (t.done) return;
    t.done = true;
    t.handle.skipped();
    this.forget(t);
  }

  /**
   * Every cycle up to `cycle` ended. Outside a transaction block every portal is gone (PostgreSQL
   * drops them at transaction end): Bind records no Execute is waiting for are finished. Inside
   * one a portal can still run (a cursor fetched in parts), so its record stays open.
   */
  cycleEnded(cycle: number): void {
    if (this.binds.length === 0 || this.conn.transaction_status !== 'I') return;
    for (const t of this.binds) if (!t.done && t.pending <= 0 && t.cycle <= cycle) this.finish(t);
    this.binds = this.binds.filter((t) => !t.done);
  }

  private finish(t: Tracked): void {
    if (t.done) return;
    t.done = true;
    t.handle.finish();
    this.forget(t);
  }

  private forget(t: Tracked): void {
    if (t.portal !== null && this.portals.get(t.portal) === t) this.portals.delete(t.portal);
  }
}
