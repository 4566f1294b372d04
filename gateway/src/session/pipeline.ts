/**
 * What the server owes the client: one entry per forwarded message that gets an answer, oldest
 * first, reconciled with the backend messages as they arrive (by type byte; DataRow and CopyData
 * are never looked at). The answers decide which pending namespace changes become true.
 *
 *   Parse → ParseComplete        Bind → BindComplete        Close → CloseComplete
 *   Describe → [ParameterDescription] RowDescription | NoData
 *   Execute → CommandComplete | EmptyQueryResponse | PortalSuspended (after CopyIn/Out, if any)
 *   Sync, Query, FunctionCall → ReadyForQuery
 *
 * An ErrorResponse fails the oldest entry; in the extended protocol the server then skips every
 * message up to Sync (simple Query and FunctionCall included), so those entries end unanswered.
 * https://www.postgresql.org/docs/current/protocol-flow.html
 */
import { BackendType, FrontendType } from '../protocol/message-types';
import type { Op, StatementNamespace } from './namespace';
import type { StatementTracker, Tracked } from './statement-tracker';

interface Expect {
  /** Frontend type byte of the forwarded message. */
  type: number;
  cycle: number;
  /** Namespace changes this message makes when it succeeds (or always, see Op.always). */
  ops: Op[] | null;
  /** The statement log record this entry answers (statement-tracker.ts); null without one. */
  stmt: Tracked | null;
}

/** Cycle-ending messages: each gets exactly one ReadyForQuery unless skipped. */
function endsCycle(type: number): boolean {
  return type === FrontendType.Sync || type === FrontendType.Query || type === FrontendType.FunctionCall;
}

export class Pipeline {
  /**
   * Entries [head, tail) are unanswered, oldest first. The slots past `tail` keep entries already
   * answered, reused by the next messages sent (no object nor array growth per message).
   */
  private queue: Expect[] = [];
  private head = 0;
  private tail = 0;
  /** Cycle-ending messages forwarded (the id of the next cycle; never reused). */
  cyclesSent = 0;
  /** The id of the last cycle the server ended (ReadyForQuery) or skipped; -1 before any. */
  lastEnded = -1;
  /** COPY FROM STDIN in progress (CopyInResponse seen, CopyDone/CopyFail not yet sent). */
  copyIn = false;
  /** The statement log's tracker (statement_log.enabled), told what happens to each entry. */
  tracker: StatementTracker | null = null;
  /** The record the next forwarded message's entry carries (set by the request phase). */
  carry: Tracked | null = null;

  constructor(private readonly ns: StatementNamespace) {}

  /** Entries still unanswered. */
  get outstanding(): number {
    return this.tail - this.head;
  }

  /** The cycle a message forwarded now belongs to. */
  get cycle(): number {
    return this.cyclesSent;
  }

  /**
   * Whether the next answer's CommandComplete tag is read: the oldest entry has a namespace change
   * a tag confirms (an op with a tag: confirmTag) or a statement log record. Otherwise received()
   * is given no tag and the answer is only checked in place, never decoded (core.ts).
   */
  wantsTag(): boolean {
    const e = this.peek();
    if (e === undefined) return false;
    if (e.stmt !== null) return true;
    // confirmTag acts on ops named by a tag only (a simple Query's drop of the unnamed statement is not).
    const ops = e.ops;
    if (ops !== null) for (let i = 0; i < ops.length; i++) if (ops[i]!.tag !== null) return true;
    return false;
  }

  /** Records a forwarded message (after its ops were added to the namespace). */
  sent(type: number, ops: Op[] | null): void {
    const stmt = this.carry;
    this.carry = null;
    if (this.copyIn) {
      // The server ignores Flush and Sync during COPY FROM STDIN; the copy messages get no answer.
      if (type === FrontendType.CopyDone || type === FrontendType.CopyFail) this.copyIn = false;
      return;
    }
    if (!expectsAnswer(type)) return;
    const spare = this.queue[this.tail];
    if (spare === undefined) this.queue.push({ type, cycle: this.cyclesSent, ops, stmt });
    else {
      spare.type = type;
      spare.cycle = this.cyclesSent;
      spare.ops = ops;
      spare.stmt = stmt;
    }
    this.tail++;
    if (endsCycle(type)) this.cyclesSent++;
  }

  /**
   * Reconciles one backend message (type byte; `tag`: CommandComplete's tag, an ErrorResponse's
   * SQLSTATE when a tracker wants it). Returns false when the
   * message answers nothing that was asked (pgward's model and the server disagree).
   */
  received(type: number, tag: string | null): boolean {
    const e = this.peek();
    switch (type) {
      case BackendType.ParseComplete:
        return this.answers(e, FrontendType.Parse);
      case BackendType.BindComplete:
        return this.answers(e, FrontendType.Bind);
      case BackendType.CloseComplete:
        return this.answers(e, FrontendType.Close);
      case BackendType.NoData:
        return this.answers(e, FrontendType.Describe);
      case BackendType.ParameterDescription:
        return e?.type === FrontendType.Describe;
      case BackendType.RowDescription:
        if (e?.type === FrontendType.Describe) return this.answers(e, FrontendType.Describe);
        return e?.type === FrontendType.Query || e?.type === FrontendType.Execute;
      case BackendType.PortalSuspended:
        if (e !== undefined && e.stmt !== null && e.type === FrontendType.Execute) this.suspended(e);
        return this.commandDone(e, tag);
      case BackendType.EmptyQueryResponse:
      case BackendType.CommandComplete:
        return this.commandDone(e, tag);
      case BackendType.CopyInResponse:
      case BackendType.CopyBothResponse:
        this.startCopyIn();
        return e !== undefined;
      case BackendType.ErrorResponse:
        this.copyIn = false;
        if (e !== undefined) this.failed(e, tag);
        return true;
      case BackendType.ReadyForQuery:
        this.copyIn = false;
        return this.ready();
      default:
        return true;
    }
  }

  private answers(e: Expect | undefined, type: number): boolean {
    if (e === undefined || e.type !== type) return false;
    this.complete(e);
    return true;
  }

  /** CommandComplete, EmptyQueryResponse, PortalSuspended: of a Query's statement or an Execute. */
  private commandDone(e: Expect | undefined, tag: string | null): boolean {
    if (e === undefined) return false;
    if (e.stmt !== null && (e.type === FrontendType.Query || e.type === FrontendType.Execute))
      this.tracker!.command(e.stmt, tag);
    if (e.type === FrontendType.Query) {
      if (tag !== null) this.confirmTag(e, tag);
      return true;
    }
    if (e.type !== FrontendType.Execute) return false;
    if (tag !== null) this.confirmTag(e, tag);
    this.end(e, false);
    this.shift();
    return true;
  }

  private peek(): Expect | undefined {
    return this.head < this.tail ? this.queue[this.head] : undefined;
  }

  /** Drops the oldest entry; its slot is reused once the queue is empty (see queue). */
  private shift(): void {
    const e = this.queue[this.head] as Expect;
    e.ops = null;
    e.stmt = null;
    this.head++;
    if (this.head === this.tail) {
      this.head = 0;
      this.tail = 0;
      // A deep pipeline leaves many spare slots: keep a few.
      if (this.queue.length > 64) this.queue.length = 64;
    } else if (this.head >= 1024 && this.head * 2 >= this.tail) {
      this.queue = this.queue.slice(this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
  }

  /** The entry's message succeeded: its ops are true now. */
  private complete(e: Expect): void {
    if (e.stmt !== null) this.tracker!.answered(e.stmt);
    if (e.ops) for (const op of e.ops) this.ns.confirm(op);
    this.shift();
  }

  /** CommandComplete of a Query or Execute: confirms the SQL-level op the tag names. */
  private confirmTag(e: Expect, tag: string): void {
    const ops = e.ops;
    if (ops === null) return;
    if (tag !== 'PREPARE' && tag !== 'DEALLOCATE' && tag !== 'DEALLOCATE ALL' && tag !== 'DISCARD ALL')
      return;
    const i = ops.findIndex((op) => op.tag === tag);
    if (i < 0) return;
    // An op before it that has not answered did not run (DISCARD PLANS answers with its own tag).
    for (let k = 0; k < i; k++) {
      const op = ops[k] as Op;
      if (op.always) this.ns.confirm(op);
      else this.ns.rollback(op);
    }
    this.ns.confirm(ops[i] as Op);
    e.ops = ops.slice(i + 1);
  }

  /** ErrorResponse: the oldest entry failed. */
  private failed(e: Expect, sqlstate: string | null): void {
    if (e.stmt !== null && sqlstate !== null) this.tracker!.failed(e.stmt, sqlstate);
    this.end(e, false);
    if (endsCycle(e.type)) return; // its ReadyForQuery follows
    this.shift();
    // Skip-until-Sync: nothing up to the next Sync runs (or answers).
    for (let n = this.peek(); n !== undefined && n.type !== FrontendType.Sync; n = this.peek()) {
      this.end(n, true);
      if (endsCycle(n.type)) this.lastEnded = n.cycle;
      this.shift();
    }
  }

  /** Settles an entry that will not succeed: `always` ops hold if it ran, the rest are rolled back. */
  private end(e: Expect, skipped: boolean): void {
    if (e.stmt !== null) this.endStatement(e, skipped);
    if (e.ops === null) return;
    for (const op of e.ops) {
      if (op.always && !skipped) this.ns.confirm(op);
      else this.ns.rollback(op);
    }
    e.ops = null;
  }

  /** PortalSuspended: the Execute's statement can run on (another Execute), it has not ended. */
  private suspended(e: Expect): void {
    this.tracker!.answered(e.stmt as Tracked);
    e.stmt = null;
  }

  /** The statement of an entry that will not be answered any more: ended, or skipped by the server. */
  private endStatement(e: Expect, skipped: boolean): void {
    const t = e.stmt as Tracked;
    e.stmt = null;
    if (skipped) this.tracker!.skipped(t);
    else this.tracker!.ended(t);
  }

  private ready(): boolean {
    for (let e = this.peek(); e !== undefined; e = this.peek()) {
      const last = endsCycle(e.type);
      // A Query's or FunctionCall's own changes that did not answer did not happen; an entry
      // before a Sync that never answered was skipped.
      this.end(e, !last);
      this.shift();
      if (last) {
        this.lastEnded = e.cycle;
        if (this.tracker !== null) this.tracker.cycleEnded(e.cycle);
        return true;
      }
    }
    return false;
  }

  /**
   * COPY FROM STDIN started. The server ignores Sync until CopyDone/CopyFail: every Sync not
   * answered yet was sent after the Execute that started it (a pipeline sends one at once), so it
   * ends no cycle; the cycle ends with the Sync the client sends after CopyDone/CopyFail.
   */
  private startCopyIn(): void {
    this.copyIn = true;
    const e = this.peek();
    if (e === undefined) return;
    const kept = this.queue.slice(this.head + 1, this.tail).filter((x) => x.type !== FrontendType.Sync);
    this.queue = [e, ...kept];
    this.head = 0;
    this.tail = this.queue.length;
  }
}

function expectsAnswer(type: number): boolean {
  switch (type) {
    case FrontendType.Parse:
    case FrontendType.Bind:
    case FrontendType.Close:
    case FrontendType.Describe:
    case FrontendType.Execute:
    case FrontendType.Sync:
    case FrontendType.Query:
    case FrontendType.FunctionCall:
      return true;
    default:
      return false;
  }
}
