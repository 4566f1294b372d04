import { LeafCache, leafPlan, UNKEYABLE } from './leaf-cache';
import { pathTrie } from './input-project';
import type { InputDocument } from './types';
import { ShapeCache } from '../sql/shape-cache';
import { initSqlParser } from '../sql/classify';
import type { StatementInfo } from '../sql/types';

const doc = (o: Record<string, unknown>) => o as unknown as InputDocument;

function cacheFor(paths: string[][], max = 64): LeafCache<string> {
  const plan = leafPlan(pathTrie(paths));
  if (plan === null) throw new Error('no plan');
  return new LeafCache(plan, max);
}

describe('leafPlan', () => {
  it('serves neither the whole document nor a bundle reading time or "*" at the top', () => {
    expect(leafPlan(pathTrie([[]]))).toBeNull();
    expect(leafPlan(pathTrie([['time', 'hour']]))).toBeNull();
    expect(leafPlan(pathTrie([['*']]))).toBeNull();
    expect(leafPlan(pathTrie([['statements', '*', 'command']]))).not.toBeNull();
  });
});

describe('LeafCache', () => {
  it('tells absent, null, a primitive, an array and an object apart at an inner node', () => {
    const c = cacheFor([['message', 'statement', 'parse_error']]);
    const docs = [
      {},
      { message: null },
      { message: 'x' },
      { message: [] },
      { message: {} },
      { message: { statement: null } },
      { message: { statement: { parse_error: null } } },
      { message: { statement: { parse_error: 'oops' } } },
    ];
    docs.forEach((d, i) => {
      expect(c.get(doc(d))).toBeUndefined();
      c.set(String(i));
    });
    docs.forEach((d, i) => expect(c.get(doc(d))).toBe(String(i)));
  });

  it('ignores what no path reaches, reads what one does at lookup time', () => {
    const c = cacheFor([['connection', 'user']]);
    const conn = { user: 'alice', id: 'a' };
    expect(c.get(doc({ connection: conn, other: 1 }))).toBeUndefined();
    c.set('alice');
    conn.id = 'b';
    expect(c.get(doc({ connection: conn, other: 2 }))).toBe('alice');
    conn.user = 'bob';
    expect(c.get(doc({ connection: conn }))).toBeUndefined();
  });

  it('keys a deeply frozen value by identity, and cannot key one that may change', () => {
    const c = cacheFor([['statements']]);
    const frozen = Object.freeze([Object.freeze({ command: 'SELECT' })]);
    expect(c.get(doc({ statements: frozen }))).toBeUndefined();
    c.set('select');
    expect(c.get(doc({ statements: frozen }))).toBe('select');
    expect(c.get(doc({ statements: Object.freeze([Object.freeze({ command: 'SELECT' })]) }))).toBeUndefined();
    expect(c.get(doc({ statements: Object.freeze([{ command: 'SELECT' }]) }))).toBe(UNKEYABLE);
    expect(c.get(doc({ statements: [] }))).toBe(UNKEYABLE);
    // set after an unkeyable lookup stores nothing.
    c.set('wrong');
    expect(c.get(doc({ statements: frozen }))).toBe('select');
  });

  it('takes a value under "*" whole', () => {
    const c = cacheFor([['statements', '*', 'command']]);
    const a = Object.freeze([Object.freeze({ command: 'SELECT' })]);
    expect(c.get(doc({ statements: a }))).toBeUndefined();
    c.set('a');
    expect(c.get(doc({ statements: a }))).toBe('a');
    expect(c.get(doc({ statements: [{ command: 'SELECT' }] }))).toBe(UNKEYABLE);
  });

  it('refuses long texts as keys', () => {
    const c = cacheFor([['message', 'sql']]);
    expect(c.get(doc({ message: { sql: 'x'.repeat(5000) } }))).toBe(UNKEYABLE);
  });

  it('stays within its bound and keeps what was used since the last turnover', () => {
    const c = cacheFor([['n']], 4);
    const put = (n: number) => {
      expect(c.get(doc({ n }))).toBeUndefined();
      c.set(`v${n}`);
    };
    put(1);
    put(2);
    put(3); // turnover: 1 and 2 are old
    expect(c.get(doc({ n: 1 }))).toBe('v1'); // moved to the young generation
    put(4); // turnover: 3 and 1 old, 2 dropped
    expect(c.get(doc({ n: 2 }))).toBeUndefined();
    expect(c.get(doc({ n: 1 }))).toBe('v1');
    expect(c.size).toBeLessThanOrEqual(2);
  });
});

describe('LeafCache and the shape cache', () => {
  const shapes = new ShapeCache(16);
  const classify = (sql: string) => {
    const key = shapes.key(sql);
    return (key !== null ? shapes.get(key, sql) : undefined) ?? shapes.classify(key, sql);
  };
  let one: StatementInfo[], two: StatementInfo[], other: StatementInfo[];
  beforeAll(async () => {
    await initSqlParser();
    one = classify('SELECT * FROM t WHERE id = 1').statements;
    two = classify('SELECT * FROM t WHERE id = 2').statements;
    other = classify('SELECT * FROM u WHERE id = 3').statements;
  });

  it('answers texts of one shape alike when no path reads their SQL text', () => {
    expect(Object.isFrozen(two)).toBe(false); // a shape-cache hit: the template with its own sql
    const c = cacheFor([['statements', '*', 'relations']]);
    expect(c.get(doc({ statements: one }))).toBeUndefined();
    c.set('t');
    expect(c.get(doc({ statements: two }))).toBe('t');
    expect(c.get(doc({ statements: other }))).toBeUndefined();
  });

  it('tells them apart when a path reads the text, or the whole statement', () => {
    for (const paths of [[['statements', '*', 'sql']], [['statements', '*']], [['statements']]]) {
      const c = cacheFor(paths);
      expect(c.get(doc({ statements: one }))).toBeUndefined();
      c.set('one');
      expect(c.get(doc({ statements: two }))).toBe(UNKEYABLE);
    }
  });
});
