/**
 * The session's prepared statements as PostgreSQL holds them. Protocol-level (Parse) and SQL-level
 * (PREPARE) statements share one namespace on the server; the unnamed statement is kept apart
 * (DEALLOCATE ALL and DISCARD ALL leave it alone, a simple Query or the next unnamed Parse drop it).
 *
 * Nothing changes here on the client's word: every change is an `Op` that stays pending until the
 * server confirms it (ParseComplete, CloseComplete, CommandComplete PREPARE / DEALLOCATE /
 * DEALLOCATE ALL / DISCARD ALL) or rolls it back (its ErrorResponse, or the skip-until-Sync after an
 * earlier error). A message is judged against a view: the confirmed namespace plus the pending ops
 * in order. Within one cycle (up to Sync) a message runs only if everything before it succeeded, so
 * a pending op of the same cycle is certain for it; an op of an earlier, unanswered cycle may or may
 * not have happened, and when the name could then mean two different statements, the view says so
 * (`ambiguous`) instead of guessing.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
 */
import type { Classification, StatementInfo } from '../sql/types';
import type { PreparedRef } from '../policy/types';
import { deepFreeze, namesPrepared } from '../sql/frozen';

export interface Statement {
  ref: PreparedRef;
  /** Parse: the declared parameter type OIDs (they give a Bind's values their types). */
  paramTypes: readonly number[];
}

/** A statement the server has but pgward did not record (a limit was reached): never judged. */
export const UNTRACKED = 'untracked';
export type Entry = Statement | typeof UNTRACKED;

/** What a name means to the server when the message being judged runs. */
export type Resolution = Statement | 'absent' | 'untracked' | 'ambiguous';

export interface Op {
  kind: 'define' | 'drop' | 'clear';
  /** The statement name ('' for clear). */
  name: string;
  entry: Entry | null;
  /** The cycle (counted in cycle-ending messages sent before it) the op belongs to. */
  cycle: number;
  /** SQL-level ops: the CommandComplete tag that confirms it. */
  tag: string | null;
  /** Applies even when its own message fails (an unnamed Parse drops the old unnamed statement first). */
  always: boolean;
  /** Set by StatementNamespace.add: the order sent (a field, not a WeakMap entry per message). */
  seq?: number;
}

export interface NamespaceLimits {
  /** Most statements recorded; beyond it new names are UNTRACKED (a Bind of them is denied). */
  maxEntries: number;
  /** Most SQL text (UTF-16 code units) recorded over all statements. */
  maxSqlChars: number;
}

const DEFAULT_LIMITS: NamespaceLimits = { maxEntries: 10_000, maxSqlChars: 16 * 1024 * 1024 };

/** Marks a branch of the view in which the message being judged never runs. */
const DEAD = null;

/** Most pending changes of one name looked at to judge a message (see resolve). */
const MAX_SCAN = 1000;

const NONE: Op[] = [];

function fromEntry(e: Entry | undefined): Resolution {
  return e === undefined ? 'absent' : e === UNTRACKED ? 'untracked' : e;
}

export class StatementNamespace {
  /** Confirmed named statements; the unnamed one is `unnamed` (changed by nearly every cycle). */
  private readonly confirmed = new Map<string, Entry>();
  private unnamed: Entry | undefined = undefined;
  /** Pending ops by the name they change (clears in `clears`), each list in the order sent. */
  private readonly pendingByName = new Map<string, Op[]>();
  private clears: Op[] = [];
  private pendingCount = 0;
  private seq = 0;
  private sqlChars = 0;

  constructor(private readonly limits: NamespaceLimits = DEFAULT_LIMITS) {}

  /** Confirmed statements (the unnamed one included). */
  get size(): number {
    return this.confirmed.size + (this.unnamed === undefined ? 0 : 1);
  }

  get pendingOps(): number {
    return this.pendingCount;
  }

  /** Whether a change of a named statement (or a clear of all) is pending. */
  get namedChangePending(): boolean {
    return this.clears.length > 0 || this.pendingByName.size > (this.pendingByName.has('') ? 1 : 0);
  }

  /** The confirmed meaning of `name` (for tests and diagnostics). */
  confirmedEntry(name: string): Entry | undefined {
    return this.get(name);
  }

  add(op: Op): void {
    op.seq = this.seq++;
    this.pendingCount++;
    if (op.kind === 'clear') this.clears.push(op);
    else {
      const list = this.pendingByName.get(op.name);
      if (list) list.push(op);
      else this.pendingByName.set(op.name, [op]);
    }
  }

  /** The server did it. */
  confirm(op: Op): void {
    if (!this.remove(op)) return;
    switch (op.kind) {
      case 'define':
        this.set(op.name, op.entry ?? UNTRACKED);
        return;
      case 'drop':
        this.delete(op.name);
        return;
      case 'clear':
        for (const name of [...this.confirmed.keys()]) if (name !== '') this.delete(name);
        return;
    }
  }

  /** The server did not do it (its message failed or was skipped). */
  rollback(op: Op): void {
    this.remove(op);
  }

  /** What `name` means to a message of cycle `cycle`. */
  resolve(name: string, cycle: number): Resolution {
    const start = this.get(name);
    const ops = this.pendingFor(name);
    if (ops.length === 0) return fromEntry(start);
    const last = ops[ops.length - 1] as Op;
    // The usual case (Parse '' + Bind '' in one cycle): the last change decides alone.
    if (last.cycle === cycle && (last.kind !== 'define' || name === ''))
      return fromEntry(apply(last, name, undefined) ?? undefined);
    // Bounded work per message: a name changed this often while unanswered is not guessed.
    if (ops.length > MAX_SCAN) return 'ambiguous';
    let cands: Array<Entry | undefined> = [start];
    for (const op of ops) {
      const applied: Array<Entry | undefined> = [];
      for (const v of cands) {
        const r = apply(op, name, v);
        if (r !== DEAD) applied.push(r);
      }
      if (op.cycle === cycle) cands = applied;
      else for (const r of applied) if (!cands.includes(r)) cands.push(r);
    }
    let found: Entry | undefined;
    for (const v of cands) {
      if (v === undefined) continue;
      if (found !== undefined && found !== v) return 'ambiguous';
      found = v;
    }
    return fromEntry(found);
  }

  /** The pending ops that change `name`, in the order sent. */
  private pendingFor(name: string): Op[] {
    const own = this.pendingByName.get(name) ?? NONE;
    if (name === '' || this.clears.length === 0) return own;
    if (own.length === 0) return this.clears;
    const out: Op[] = [];
    let i = 0;
    let k = 0;
    while (i < own.length || k < this.clears.length) {
      const a = own[i];
      const b = this.clears[k];
      if (b === undefined || (a !== undefined && (a.seq ?? 0) < (b.seq ?? 0))) {
        out.push(a as Op);
        i++;
      } else {
        out.push(b);
        k++;
      }
    }
    return out;
  }

  /**
   * A copy of `c` in which every EXECUTE's `prepared.inner` is what its name means at that point
   * (earlier statements of the same text included); absent when unknown or not certain.
   */
  expand(c: Classification, cycle: number): Classification {
    // `c` itself when no statement names a prepared statement: the judge reuses the classification
    // of a repeated frame only then (FrameJudge's memo). (A second method: the closures of
    // expandPrepared would cost their context on every call.)
    return namesPrepared(c.statements) ? this.expandPrepared(c, cycle) : c;
  }

  private expandPrepared(c: Classification, cycle: number): Classification {
    const overlay = new Map<string, StatementInfo | null>();
    let cleared = false;
    const lookup = (name: string): StatementInfo | null => {
      if (overlay.has(name)) return overlay.get(name) ?? null;
      return cleared ? null : innerOf(this.resolve(name, cycle));
    };
    const exists = (name: string): boolean =>
      overlay.has(name)
        ? overlay.get(name) !== undefined
        : !cleared && this.resolve(name, cycle) !== 'absent';
    const statements = c.statements.map((s) => {
      const p = s.prepared;
      if (p === null) return s;
      switch (p.kind) {
        case 'prepare':
          // PREPARE of a name that exists fails (42P05): an EXECUTE after it gets no inner.
          if (p.name !== null) overlay.set(p.name, exists(p.name) ? null : (p.inner ?? null));
          return s;
        case 'deallocate':
        case 'discard':
          if (p.kind === 'discard' || p.name === null) {
            overlay.clear();
            cleared = true;
          } else overlay.set(p.name, null);
          return s;
        case 'execute': {
          const { inner: _ignored, ...rest } = p;
          const inner = p.name === null ? null : lookup(p.name);
          return { ...s, prepared: inner === null ? rest : { ...rest, inner } };
        }
      }
    });
    return { statements, parse_error: c.parse_error };
  }

  /** The SQL-level changes (PREPARE, DEALLOCATE, DISCARD ALL) that `statements` make when they run. */
  sqlOps(c: Classification, cycle: number): Op[] {
    const ops: Op[] = [];
    if (c.parse_error !== null) return ops;
    for (const s of c.statements) {
      const p = s.prepared;
      if (p === null) continue;
      const base = { cycle, always: false, entry: null };
      if (p.kind === 'prepare' && p.name !== null) {
        const entry: Entry = p.inner ? sqlStatement(p.name, p.inner) : UNTRACKED;
        ops.push({ ...base, kind: 'define', name: p.name, entry, tag: 'PREPARE' });
      } else if (p.kind === 'deallocate') {
        if (p.name === null) ops.push({ ...base, kind: 'clear', name: '', tag: 'DEALLOCATE ALL' });
        else ops.push({ ...base, kind: 'drop', name: p.name, tag: 'DEALLOCATE' });
      } else if (p.kind === 'discard') {
        // DISCARD PLANS is classified as a discard too; it answers "DISCARD PLANS" and so confirms nothing.
        ops.push({ ...base, kind: 'clear', name: '', tag: 'DISCARD ALL' });
      }
    }
    return ops;
  }

  private remove(op: Op): boolean {
    const list = op.kind === 'clear' ? this.clears : this.pendingByName.get(op.name);
    if (list === undefined) return false;
    const i = list.indexOf(op);
    if (i < 0) return false;
    if (i === 0) list.shift();
    else list.splice(i, 1);
    // The unnamed statement's list stays, empty: it is changed by nearly every extended-protocol
    // cycle, and a Map entry deleted and added again per cycle shrinks and regrows the table.
    if (list.length === 0 && op.kind !== 'clear' && op.name !== '') this.pendingByName.delete(op.name);
    this.pendingCount--;
    return true;
  }

  private get(name: string): Entry | undefined {
    return name === '' ? this.unnamed : this.confirmed.get(name);
  }

  /** Replaces the entry (the unnamed one in its field: no Map entry deleted and added per cycle). */
  private set(name: string, entry: Entry): void {
    this.delete(name);
    const chars = entry === UNTRACKED ? 0 : entry.ref.sql.length;
    const full = this.size >= this.limits.maxEntries || this.sqlChars + chars > this.limits.maxSqlChars;
    const e = full && entry !== UNTRACKED ? UNTRACKED : entry;
    if (name === '') this.unnamed = e;
    else this.confirmed.set(name, e);
    if (e !== UNTRACKED) this.sqlChars += chars;
  }

  private delete(name: string): void {
    const old = this.get(name);
    if (old === undefined) return;
    if (old !== UNTRACKED) this.sqlChars -= old.ref.sql.length;
    if (name === '') this.unnamed = undefined;
    else this.confirmed.delete(name);
  }
}

/**
 * The value of `name` after `op` runs successfully on `v`. A named Parse or PREPARE of a name that
 * exists fails (42P05 duplicate_prepared_statement), and the messages after it in its cycle are
 * skipped: that branch is DEAD for them.
 */
function apply(op: Op, name: string, v: Entry | undefined): Entry | undefined | typeof DEAD {
  switch (op.kind) {
    case 'define':
      if (name !== '' && v !== undefined) return DEAD;
      return op.entry ?? UNTRACKED;
    case 'drop':
    case 'clear':
      return undefined;
  }
}

/** The inner statement an `EXECUTE name` runs, when certain. */
export function innerOf(r: Resolution): StatementInfo | null {
  if (typeof r === 'string') return null;
  const s = r.ref;
  return s.parse_error === null && s.statements.length === 1 ? (s.statements[0] ?? null) : null;
}

/** A statement made by SQL `PREPARE name AS inner` (its parameter types are not known here). */
export function sqlStatement(name: string, inner: StatementInfo): Statement {
  return {
    ref: { name, sql: inner.sql, statements: deepFreeze([inner]), parse_error: null },
    paramTypes: [],
  };
}
