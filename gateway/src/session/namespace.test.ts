/**
 * The statement namespace on its own: resolution across cycles, SQL-level changes, limits. The
 * confirmation rules (which answer commits or rolls back what) are covered scenario by scenario in
 * core.test.ts.
 */
import type { Classification, StatementInfo } from '../sql/types';
import { StatementNamespace, type Op } from './namespace';
import { ReplayStatements } from './judged-ops';
import { del, ok, sel, stmt } from '../sql/test-fixtures';

const prepare = (name: string, inner?: StatementInfo) =>
  stmt('PREPARE', `PREPARE ${name} AS ${inner?.sql ?? '?'}`, {
    node: 'PrepareStmt',
    prepared: inner === undefined ? { kind: 'prepare', name } : { kind: 'prepare', name, inner },
  });
const execute = (name: string) =>
  stmt('EXECUTE', `EXECUTE ${name}`, { node: 'ExecuteStmt', prepared: { kind: 'execute', name } });
const deallocate = (name: string | null) =>
  stmt('DEALLOCATE', `DEALLOCATE ${name ?? 'ALL'}`, {
    node: 'DeallocateStmt',
    prepared: { kind: 'deallocate', name },
  });
const discardAll = stmt('DISCARD ALL', 'DISCARD ALL', {
  node: 'DiscardStmt',
  prepared: { kind: 'discard', name: null },
});

function innerAt(c: Classification, i: number): StatementInfo | undefined {
  return c.statements[i]?.prepared?.inner;
}

const define = (name: string, sql: string, cycle: number, always = false): Op => ({
  kind: 'define',
  name,
  entry: { ref: { name, sql, statements: [], parse_error: null }, paramTypes: [] },
  cycle,
  tag: null,
  always,
});
const drop = (name: string, cycle: number, always = false): Op => ({
  kind: 'drop',
  name,
  entry: null,
  cycle,
  tag: null,
  always,
});
const sqlOf = (r: unknown): string | unknown =>
  typeof r === 'string' ? r : (r as { ref: { sql: string } }).ref.sql;

describe('SQL-level statements (replay applies them at once)', () => {
  it('fills EXECUTE from a PREPARE; DEALLOCATE removes it', () => {
    const r = new ReplayStatements();
    expect(innerAt(r.expand(ok(execute('p'))), 0)).toBeUndefined();
    r.applied(ok(prepare('p', del)));
    expect(innerAt(r.expand(ok(execute('p'))), 0)).toEqual(del);
    expect(r.resolve('p')).toMatchObject({
      ref: { name: 'p', sql: del.sql, statements: [del], parse_error: null },
    });
    r.applied(ok(deallocate('p')));
    expect(innerAt(r.expand(ok(execute('p'))), 0)).toBeUndefined();
    expect(r.resolve('p')).toBe('absent');
  });

  it('expand does not mutate its argument and drops an inner the classifier made up', () => {
    const r = new ReplayStatements();
    const forged: Classification = ok(
      stmt('EXECUTE', 'EXECUTE p', { prepared: { kind: 'execute', name: 'p', inner: sel } }),
    );
    const copy = JSON.parse(JSON.stringify(forged)) as Classification;
    const out = r.expand(forged);
    expect(innerAt(out, 0)).toBeUndefined();
    expect(out.statements[0]!.prepared).toEqual({ kind: 'execute', name: 'p' });
    expect(forged).toEqual(copy);
  });

  it('sees PREPARE and DEALLOCATE earlier in the same text', () => {
    const r = new ReplayStatements();
    const c = r.expand(ok(prepare('p', del), execute('p'), deallocate('p'), execute('p')));
    expect(innerAt(c, 1)).toEqual(del);
    expect(innerAt(c, 3)).toBeUndefined();
    r.applied(ok(prepare('q', sel)));
    const d = r.expand(ok(execute('q'), discardAll, execute('q')));
    expect(innerAt(d, 0)).toEqual(sel);
    expect(innerAt(d, 2)).toBeUndefined();
  });

  it('DEALLOCATE ALL and DISCARD ALL clear the named statements', () => {
    const r = new ReplayStatements();
    r.applied(ok(prepare('a', sel), prepare('b', del)));
    expect(r.resolve('b')).not.toBe('absent');
    r.applied(ok(deallocate(null)));
    expect(r.resolve('a')).toBe('absent');
    expect(r.resolve('b')).toBe('absent');
    r.applied(ok(prepare('a', sel)));
    r.applied(ok(discardAll));
    expect(r.resolve('a')).toBe('absent');
  });

  it('a PREPARE of a name that exists fails (42P05): the first definition stays', () => {
    const r = new ReplayStatements();
    r.applied(ok(prepare('p', del)));
    expect(innerAt(r.expand(ok(prepare('p', sel), execute('p'))), 1)).toBeUndefined();
    r.applied(ok(prepare('p', sel)));
    expect(innerAt(r.expand(ok(execute('p'))), 0)).toEqual(del);
    r.applied(ok(deallocate('p')));
    r.applied(ok(prepare('p', sel)));
    expect(innerAt(r.expand(ok(execute('p'))), 0)).toEqual(sel);
  });

  it('a PREPARE without a classified inner statement is a statement pgward cannot name', () => {
    const r = new ReplayStatements();
    r.applied(ok(prepare('p')));
    expect(innerAt(r.expand(ok(execute('p'))), 0)).toBeUndefined();
    expect(r.resolve('p')).toBe('untracked');
  });

  it('ignores texts that did not parse', () => {
    const r = new ReplayStatements();
    r.applied({ statements: [prepare('p', sel)], parse_error: 'x' });
    expect(r.resolve('p')).toBe('absent');
  });
});

describe('StatementNamespace', () => {
  it('is bounded: beyond maxEntries a confirmed statement is untracked (never judged)', () => {
    const ns = new StatementNamespace({ maxEntries: 2, maxSqlChars: 1000 });
    for (const name of ['a', 'b', 'c']) {
      const op = define(name, `SELECT '${name}'`, 0);
      ns.add(op);
      ns.confirm(op);
    }
    expect(sqlOf(ns.resolve('b', 1))).toBe("SELECT 'b'");
    expect(ns.resolve('c', 1)).toBe('untracked');
    const big = new StatementNamespace({ maxEntries: 10, maxSqlChars: 5 });
    const op = define('x', 'SELECT 123456', 0);
    big.add(op);
    big.confirm(op);
    expect(big.resolve('x', 1)).toBe('untracked');
  });

  it('keeps the unnamed statement beside the named ones: replaced in place, counted in size and limits', () => {
    const ns = new StatementNamespace({ maxEntries: 2, maxSqlChars: 1000 });
    const confirm = (name: string, sql: string): void => {
      const op = define(name, sql, 0);
      ns.add(op);
      ns.confirm(op);
    };
    for (let i = 0; i < 5; i++) confirm('', `SELECT ${i}`);
    expect(ns.size).toBe(1);
    expect(sqlOf(ns.resolve('', 1))).toBe('SELECT 4');
    expect(ns.pendingOps).toBe(0);
    expect(ns.namedChangePending).toBe(false);
    confirm('a', 'SELECT a');
    expect(ns.size).toBe(2);
    // Replacing the unnamed statement does not count it twice against maxEntries.
    confirm('', 'SELECT 5');
    expect(sqlOf(ns.resolve('', 1))).toBe('SELECT 5');
    confirm('b', 'SELECT b');
    expect(ns.resolve('b', 1)).toBe('untracked');
    const drop = { kind: 'drop' as const, name: '', entry: null, cycle: 1, tag: null, always: true };
    ns.add(drop);
    expect(ns.namedChangePending).toBe(false);
    ns.confirm(drop);
    expect(ns.resolve('', 2)).toBe('absent');
    expect(ns.size).toBe(2); // a, and b untracked
    const chars = new StatementNamespace({ maxEntries: 10, maxSqlChars: 10 });
    for (let i = 0; i < 3; i++) {
      const op = define('', 'SELECT 12', 0);
      chars.add(op);
      chars.confirm(op);
    }
    // Its text is counted once, not once per replacement.
    expect(sqlOf(chars.resolve('', 1))).toBe('SELECT 12');
  });

  it('a pending define is certain for its own cycle, and harmless for a later one when the name was free', () => {
    const ns = new StatementNamespace();
    ns.add(define('s', 'SELECT 1', 0));
    expect(sqlOf(ns.resolve('s', 0))).toBe('SELECT 1');
    // If it fails, a later Bind of s gets 26000 from the server: judging it as SELECT 1 is safe.
    expect(sqlOf(ns.resolve('s', 1))).toBe('SELECT 1');
  });

  it('a name that could mean two statements, depending on an unanswered cycle, is ambiguous', () => {
    const ns = new StatementNamespace();
    const first = define('s', 'SELECT 1', 0);
    ns.add(first);
    ns.confirm(first);
    ns.add(drop('s', 1));
    ns.add(define('s', 'SELECT 2', 2));
    expect(ns.resolve('s', 3)).toBe('ambiguous');
    // In the cycle of the new Parse, it ran only if the name was free: the new one.
    expect(sqlOf(ns.resolve('s', 2))).toBe('SELECT 2');
  });

  it('a rolled-back op changes nothing; a confirmed one applies', () => {
    const ns = new StatementNamespace();
    const a = define('s', 'SELECT 1', 0);
    ns.add(a);
    ns.rollback(a);
    expect(ns.resolve('s', 1)).toBe('absent');
    expect(ns.pendingOps).toBe(0);
    const b = define('', 'SELECT 2', 1);
    ns.add(b);
    ns.confirm(b);
    const d = drop('', 2, true);
    ns.add(d);
    expect(ns.resolve('', 2)).toBe('absent');
    ns.rollback(d);
    expect(sqlOf(ns.resolve('', 3))).toBe('SELECT 2');
  });

  it('an unnamed Parse in an unanswered cycle leaves the old unnamed statement possible', () => {
    const ns = new StatementNamespace();
    const a = define('', 'SELECT 1', 0);
    ns.add(a);
    ns.confirm(a);
    ns.add(drop('', 1, true));
    ns.add(define('', 'SELECT 2', 1));
    expect(ns.resolve('', 2)).toBe('ambiguous');
    expect(sqlOf(ns.resolve('', 1))).toBe('SELECT 2');
  });
});
