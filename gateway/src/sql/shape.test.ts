import fc from 'fast-check';
import { classify, initSqlParser } from './classify';
import { shapeKey } from './shape';
import { ShapeCache, sessionClassifier, shapeIndependent, withSql } from './shape-cache';
import type { StatementInfo } from './types';

beforeAll(async () => {
  await initSqlParser();
});

describe('shapeKey', () => {
  it.each([
    [
      'SELECT abalance FROM pgbench_accounts WHERE aid = 12345;',
      'SELECT abalance FROM pgbench_accounts WHERE aid = 00000;',
    ],
    [
      "SELECT * FROM t1 WHERE name = 'it''s' AND x > 1.5e3",
      "SELECT * FROM t1 WHERE name = '     ' AND x > 0.0e3",
    ],
    ['SELECT $1, $2 FROM t', 'SELECT $1, $2 FROM t'],
    ['SELECT "col 1" FROM "t""2"', 'SELECT "col 1" FROM "t""2"'],
    ["SELECT 1 -- 42 'x'\n, 2 /* 3 /* 4 */ */", "SELECT 0 -- 42 'x'\n, 0 /* 3 /* 4 */ */"],
    ["SELECT B'0101', X'1F', E'ab', N'x'", "SELECT B'0101', X'1F', E'ab', N'x'"],
    ['SELECT a1$2 FROM t_9', 'SELECT a1$2 FROM t_9'],
  ])('%s', (sql, key) => {
    expect(shapeKey(sql)).toBe(key);
    expect(key).toHaveLength(sql.length);
  });

  it.each([
    ["SELECT 'a\\'b'"],
    ['SELECT $$x$$'],
    ['SELECT $tag$x$tag$'],
    ["SELECT 'é'"],
    ['SELECT U&"d\\0061t"'],
    ["SELECT u&'x'"],
    ["SELECT 'unterminated"],
    ['SELECT "unterminated'],
    ['SELECT 1 /* unterminated'],
  ])('gives no key for what it is not sure about: %s', (sql) => {
    expect(shapeKey(sql)).toBeNull();
  });

  it('matches the reference implementation on any text built of SQL pieces', () => {
    const piece = fc.constantFrom(
      'SELECT ',
      'a',
      'aid',
      't1',
      ' = ',
      '1',
      '42',
      '1.5e3',
      "'x'",
      "'it''s'",
      "''",
      "B'01'",
      "E'a'",
      'U&',
      '$1',
      '$$',
      '$',
      '"q"',
      '"',
      "'",
      '-- c\n',
      '--',
      '/*',
      '*/',
      '/* n /* m */ */',
      '\\',
      'é',
      ' ',
      '\n',
      ';',
      ',',
      '(',
      ')',
      '&',
      '0',
      '9'.repeat(70),
      "'" + ' '.repeat(70) + "'",
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 24 }), (parts) => {
        const sql = parts.join('');
        expect(shapeKey(sql)).toBe(referenceShapeKey(sql));
      }),
      { numRuns: 5000 },
    );
  });

  it('different identifiers give different keys', () => {
    expect(shapeKey('SELECT * FROM t1')).not.toBe(shapeKey('SELECT * FROM t2'));
    expect(shapeKey('SELECT pg_read_file(1)')).not.toBe(shapeKey('SELECT pg_read_filf(1)'));
  });
});

describe('ShapeCache', () => {
  const literal = fc.oneof(
    fc.nat({ max: 10_000_000 }).map(String),
    fc
      .string({ unit: fc.constantFrom('a', 'b', ' ', "'", '1', '-', '*', '/', ';', '$', '"'), maxLength: 12 })
      .map((s) => `'${s.replace(/'/g, "''")}'`),
  );
  const templates = [
    (a: string, _b: string) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${a}`,
    (a: string, b: string) => `UPDATE t SET v = ${a} WHERE id = ${b}`,
    (a: string, b: string) => `DELETE FROM t WHERE id = ${a} OR name = ${b}`,
    (a: string, b: string) =>
      `INSERT INTO t (id, v) VALUES (${a}, ${b}) ON CONFLICT (id) DO UPDATE SET v = ${b}`,
    (a: string, b: string) => `SELECT ${a}; SELECT * FROM credit_cards WHERE n = ${b}; DELETE FROM t`,
    (a: string, b: string) =>
      `WITH d AS (DELETE FROM t WHERE x = ${a} RETURNING *) SELECT count(*), ${b} FROM d`,
    (a: string, b: string) => `SELECT pg_read_file(${a}), nextval(${b})`,
    // Not shape-independent: never served from a template, always classified in full.
    (a: string, b: string) => `SELECT set_config('role', ${b}, false), ${a}`,
    (a: string, b: string) => `SET search_path = ${b}; SELECT ${a}`,
    (a: string, b: string) => `COPY t FROM ${b} WITH (FORMAT csv); SELECT ${a}`,
  ];

  it('answers every literal variant exactly as a full classification would', () => {
    const cache = new ShapeCache(100);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: templates.length - 1 }), literal, literal, (t, a, b) => {
        const sql = templates[t]!(a, b);
        const full = classify(sql);
        const key = cache.key(sql);
        const viaCache = (key !== null ? cache.get(key, sql) : undefined) ?? cache.classify(key, sql);
        // Element by element: a hit's list also carries its template under a symbol (frozen.ts).
        expect({ ...viaCache, statements: [...viaCache.statements] }).toEqual(full);
      }),
      { numRuns: 400 },
    );
    expect(cache.hits).toBeGreaterThan(30);
  });

  it('keeps only shape-independent classifications', () => {
    expect(shapeIndependent(classify("SELECT * FROM t WHERE a = 'x'"))).toBe(true);
    expect(shapeIndependent(classify("SELECT set_config('role', 'x', false)"))).toBe(false);
    expect(shapeIndependent(classify("COPY t FROM '/etc/passwd'"))).toBe(false);
    expect(shapeIndependent(classify('BEGIN'))).toBe(false);
    expect(shapeIndependent(classify('PREPARE p AS SELECT 1'))).toBe(false);
    expect(shapeIndependent(classify("DO 'BEGIN END'"))).toBe(false);
    expect(shapeIndependent(classify('SELEC 1'))).toBe(false);
    const cache = new ShapeCache(10);
    const key = cache.key("SET role = 'x'")!;
    cache.classify(key, "SET role = 'x'");
    expect(cache.get(key, "SET role = 'y'")).toBeUndefined();
  });

  it('is bounded', () => {
    const cache = new ShapeCache(3);
    for (let i = 0; i < 10; i++) {
      const sql = `SELECT * FROM t${i} WHERE id = 1`;
      cache.classify(cache.key(sql), sql);
    }
    expect(cache.size).toBe(3);
  });

  it('keeps what is used: the oldest unused shape goes first', () => {
    const cache = new ShapeCache(3);
    const sql = (t: string) => `SELECT * FROM ${t} WHERE id = 1`;
    const other = (t: string) => `SELECT * FROM ${t} WHERE id = 2`;
    for (const t of ['a', 'b', 'c']) cache.classify(cache.key(sql(t)), sql(t));
    expect(cache.get(cache.key(other('a'))!, other('a'))).toBeDefined();
    cache.classify(cache.key(sql('d')), sql('d'));
    const kept = (t: string) => cache.get(cache.key(other(t))!, other(t)) !== undefined;
    expect(['a', 'b', 'c', 'd'].map(kept)).toEqual([true, false, true, true]);
    // Everything used (just now, by kept): the oldest goes, never the new one.
    cache.classify(cache.key(sql('e')), sql('e'));
    expect(['c', 'd', 'a', 'e'].map(kept)).toEqual([false, true, true, true]);
    expect(cache.size).toBe(3);
  });
});

describe('withSql', () => {
  // Every key of StatementInfo, optional ones included: the compiler refuses a missing one.
  const every: Record<keyof StatementInfo, true> = {
    command: true,
    node: true,
    sql: true,
    fingerprint: true,
    relations: true,
    functions: true,
    has_where: true,
    read_only: true,
    ddl: true,
    role_change: true,
    utility: true,
    copy: true,
    transaction: true,
    prepared: true,
    settings: true,
    sql_text_calls: true,
    columns: true,
  };

  it('copies every field of a statement but its text', () => {
    const s = Object.fromEntries(Object.keys(every).map((k) => [k, { k }])) as unknown as StatementInfo;
    const c = withSql(Object.freeze(s), 'SELECT 2');
    expect(Object.keys(c).sort()).toEqual(Object.keys(every).sort());
    for (const k of Object.keys(every) as Array<keyof StatementInfo>)
      if (k !== 'sql') expect(c[k]).toBe(s[k]);
    expect(c.sql).toBe('SELECT 2');
    const plain = classify('SELECT a FROM t WHERE b = 1').statements[0]!;
    expect(Object.keys(withSql(plain, 'x'))).toEqual(Object.keys(plain));
  });
});

describe('sessionClassifier', () => {
  it('answers the exact text, then its shape, then classifies in full; the hooks count each', () => {
    const counts = { hit: 0, miss: 0 };
    const classify2 = sessionClassifier(100, {
      hit: () => void counts.hit++,
      miss: (s) => {
        expect(s).toBeGreaterThanOrEqual(0);
        counts.miss++;
      },
    });
    const a = classify2('SELECT a FROM t WHERE b = 1');
    expect(counts).toEqual({ hit: 0, miss: 1 });
    expect(classify2('SELECT a FROM t WHERE b = 1')).toBe(a);
    const b = classify2('SELECT a FROM t WHERE b = 2');
    expect(counts).toEqual({ hit: 2, miss: 1 });
    expect(b.statements[0]!.sql).toBe('SELECT a FROM t WHERE b = 2');
    expect({ ...b, statements: [...b.statements] }).toEqual(classify('SELECT a FROM t WHERE b = 2'));
    classify2('BEGIN');
    classify2('BEGIN ');
    expect(counts).toEqual({ hit: 2, miss: 3 });
  });
});

// The first implementation (slices, a closure and a regular expression), kept as the reference
// the faster one must match on any text.
const isIdentStart = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isIdentPart = (c: number): boolean => isIdentStart(c) || isDigit(c) || c === 36;
function endOfString(sql: string, open: number): number {
  let i = open + 1;
  for (;;) {
    const q = sql.indexOf("'", i);
    if (q < 0) return -1;
    if (sql.charCodeAt(q + 1) === 39) {
      i = q + 2;
      continue;
    }
    return q + 1;
  }
}

const UNSURE = /[^\x00-\x7f]|\\/;

function referenceShapeKey(sql: string): string | null {
  if (UNSURE.test(sql)) return null;
  const n = sql.length;
  const out: string[] = [];
  let i = 0;
  let copied = 0; // sql[copied, i) is still to be copied as is
  const flush = (to: number): void => {
    if (to > copied) out.push(sql.slice(copied, to));
    copied = to;
  };
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isIdentStart(c)) {
      // Identifier or keyword, including digits inside it (t1 stays t1). `U&'…'`/`U&"…"` are out.
      const start = i;
      while (i < n && isIdentPart(sql.charCodeAt(i))) i++;
      if (sql.charCodeAt(i) === 38 /* & */ && i - start === 1 && (c === 85 || c === 117)) return null;
      // B'…', X'…' (bit strings) and E'…' keep their contents: a key that differs is merely a miss.
      if (sql.charCodeAt(i) === 39 /* ' */ && i - start === 1) {
        const end = endOfString(sql, i);
        if (end < 0) return null;
        i = end;
      }
      continue;
    }
    if (c === 36 /* $ */) {
      // $n parameters stay; anything else ($tag$ quoting) is out.
      if (!isDigit(sql.charCodeAt(i + 1))) return null;
      i++;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      continue;
    }
    if (isDigit(c)) {
      const start = i;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      flush(start);
      out.push('0'.repeat(i - start));
      copied = i;
      continue;
    }
    if (c === 39 /* ' */) {
      const end = endOfString(sql, i);
      if (end < 0) return null;
      flush(i + 1);
      out.push(' '.repeat(end - i - 2));
      copied = end - 1;
      i = end;
      continue;
    }
    if (c === 34 /* " */) {
      const end = sql.indexOf('"', i + 1);
      if (end < 0) return null;
      i = end + 1; // "" inside an identifier is two adjacent quoted parts: same result
      continue;
    }
    if (c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    if (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42 /* * */) {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql.charCodeAt(i) === 47 && sql.charCodeAt(i + 1) === 42) {
          depth++;
          i += 2;
        } else if (sql.charCodeAt(i) === 42 && sql.charCodeAt(i + 1) === 47) {
          depth--;
          i += 2;
        } else i++;
      }
      if (depth > 0) return null;
      continue;
    }
    i++;
  }
  flush(n);
  return out.join('');
}
