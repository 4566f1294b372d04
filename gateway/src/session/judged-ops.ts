/**
 * The namespace changes a judged message makes if the server accepts what is forwarded for it
 * (the message itself, or the sentinel that replaces a denied one).
 */
import type { Judgement, StatementView } from '../policy/frame-judge';
import type { Classification } from '../sql/types';
import { StatementNamespace, type Op, type Resolution } from './namespace';
import type { FrontendMessage } from '../protocol/frontend/frontend-message';

export function opsForJudgement(
  ns: StatementNamespace,
  j: Judgement,
  allowed: boolean,
  cycle: number,
): Op[] | null {
  switch (j.type) {
    case 'Query':
      // A simple Query (a sentinel Query too) drops the unnamed statement before it runs, failed or not.
      if (allowed && j.classification) {
        const sql = ns.sqlOps(j.classification, cycle);
        if (sql.length > 0) return [dropUnnamed(cycle), ...sql];
      }
      return [dropUnnamed(cycle)];
    case 'FunctionCall':
      return allowed ? null : [dropUnnamed(cycle)];
    case 'Parse': {
      // An unnamed Parse drops the previous unnamed statement first, even when it then fails.
      const name = j.statementName ?? '';
      const ops: Op[] = name === '' ? [dropUnnamed(cycle)] : [];
      if (allowed && j.statement)
        ops.push({ kind: 'define', name, entry: j.statement, cycle, tag: null, always: false });
      return ops;
    }
    default:
      return null;
  }
}

function dropUnnamed(cycle: number): Op {
  return { kind: 'drop', name: '', entry: null, cycle, tag: null, always: true };
}

/**
 * For offline replay, which has no ParseComplete or CommandComplete to go by: every change of an
 * allowed message is taken as done at once (SQL-level ones of a Parse's text at the Parse).
 */
export class ReplayStatements implements StatementView {
  private readonly ns = new StatementNamespace();

  resolve(name: string): Resolution {
    return this.ns.resolve(name, 0);
  }

  expand(c: Classification): Classification {
    return this.ns.expand(c, 0);
  }

  /** Applies a judged message's changes. */
  judged(j: Judgement, allowed: boolean): void {
    this.applyAll(opsForJudgement(this.ns, j, allowed, 0));
    if (j.type === 'Parse' && allowed && j.classification) this.applyAll(this.ns.sqlOps(j.classification, 0));
  }

  /** Applies the SQL-level changes (PREPARE, DEALLOCATE, DISCARD ALL) of a text that ran. */
  applied(c: Classification): void {
    this.applyAll(this.ns.sqlOps(c, 0));
  }

  /** Applies what a message that is not judged changes (Close of a statement). */
  other(m: FrontendMessage): void {
    if (m.name === 'Close' && m.target === 'S')
      this.applyAll([{ kind: 'drop', name: m.objectName, entry: null, cycle: 0, tag: null, always: false }]);
  }

  private applyAll(ops: Op[] | null): void {
    if (ops === null) return;
    for (const op of ops) {
      // A named Parse or PREPARE of a name that exists fails on the server (42P05).
      if (op.kind === 'define' && op.name !== '' && this.ns.resolve(op.name, 0) !== 'absent') continue;
      this.ns.add(op);
      this.ns.confirm(op);
    }
  }
}
