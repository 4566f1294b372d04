import { classify, initSqlParser } from './classify';
import type { ColumnInfo } from './types';

beforeAll(async () => {
  await initSqlParser();
});

type Col = [schema: string | null, table: string | null, column: string | null, access: 'read' | 'write'];

/** Columns of the first statement, as sorted tuples; a star is column '*'. */
function cols(sql: string, i = 0): string[] {
  const c = classify(sql);
  expect(c.parse_error).toBeNull();
  const list: ColumnInfo[] = c.statements[i]!.columns!;
  for (const x of list) expect(x.star).toBe(x.column === null);
  return list.map((x) => `${x.access} ${x.schema ?? '-'}.${x.table ?? '-'}.${x.column ?? '*'}`).sort();
}

const tuples = (xs: Col[]): string[] =>
  xs.map(([s, t, c, a]) => `${a} ${s ?? '-'}.${t ?? '-'}.${c ?? '*'}`).sort();

describe('statements[].columns', () => {
  it.each<[string, string, Col[]]>([
    [
      'SELECT of one table',
      'SELECT id, ssn FROM users',
      [
        [null, 'users', 'id', 'read'],
        [null, 'users', 'ssn', 'read'],
      ],
    ],
    [
      'schema-qualified table, alias',
      'SELECT u.ssn FROM public.users AS u',
      [['public', 'users', 'ssn', 'read']],
    ],
    [
      'column qualified by table name',
      'SELECT users.ssn FROM public.users',
      [['public', 'users', 'ssn', 'read']],
    ],
    [
      'fully qualified column',
      'SELECT public.users.ssn FROM public.users',
      [['public', 'users', 'ssn', 'read']],
    ],
    [
      'WHERE, ORDER BY, GROUP BY',
      'SELECT count(*) FROM t WHERE a = 1 GROUP BY b ORDER BY c',
      [
        [null, 't', 'a', 'read'],
        [null, 't', 'b', 'read'],
        [null, 't', 'c', 'read'],
      ],
    ],
    ['SELECT *', 'SELECT * FROM users', [[null, 'users', null, 'read']]],
    [
      't.* with a join',
      'SELECT o.*, u.name FROM orders o JOIN users u ON u.id = o.user_id',
      [
        [null, 'orders', null, 'read'],
        [null, 'users', 'name', 'read'],
        [null, 'users', 'id', 'read'],
        [null, 'orders', 'user_id', 'read'],
      ],
    ],
    [
      '* over a join: one star per table',
      'SELECT * FROM a JOIN b USING (id)',
      [
        [null, 'a', null, 'read'],
        [null, 'b', null, 'read'],
        [null, null, 'id', 'read'],
      ],
    ],
    [
      'unqualified column with two tables: table unknown',
      'SELECT ssn FROM users, orders',
      [[null, null, 'ssn', 'read']],
    ],
    [
      'whole-row reference',
      'SELECT row_to_json(u) FROM users u',
      [
        [null, 'users', null, 'read'],
        [null, 'users', 'u', 'read'],
      ],
    ],
    ['count(*) reads no column', 'SELECT count(*) FROM users', []],
    [
      'INSERT with a column list',
      'INSERT INTO public.users (id, ssn) VALUES (1, $1)',
      [
        ['public', 'users', 'id', 'write'],
        ['public', 'users', 'ssn', 'write'],
      ],
    ],
    [
      'INSERT without a column list: star write',
      'INSERT INTO users VALUES (1, 2)',
      [[null, 'users', null, 'write']],
    ],
    [
      'INSERT … SELECT',
      'INSERT INTO archive (id) SELECT id FROM users WHERE ssn IS NULL',
      [
        [null, 'archive', 'id', 'write'],
        [null, 'users', 'id', 'read'],
        [null, 'users', 'ssn', 'read'],
      ],
    ],
    [
      'INSERT … RETURNING *',
      'INSERT INTO users (id) VALUES (1) RETURNING *',
      [
        [null, 'users', 'id', 'write'],
        [null, 'users', null, 'read'],
      ],
    ],
    [
      'ON CONFLICT DO UPDATE',
      'INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT (a) DO UPDATE SET b = excluded.b',
      [
        [null, 't', 'a', 'write'],
        [null, 't', 'b', 'write'],
        [null, 't', 'b', 'read'],
      ],
    ],
    [
      'UPDATE',
      'UPDATE users SET ssn = NULL, name = upper(name) WHERE id = 1',
      [
        [null, 'users', 'ssn', 'write'],
        [null, 'users', 'name', 'write'],
        [null, 'users', 'name', 'read'],
        [null, 'users', 'id', 'read'],
      ],
    ],
    [
      'UPDATE … FROM … RETURNING',
      'UPDATE users u SET name = t.name FROM t WHERE t.id = u.id RETURNING u.ssn',
      [
        [null, 'users', 'name', 'write'],
        [null, 't', 'name', 'read'],
        [null, 't', 'id', 'read'],
        [null, 'users', 'id', 'read'],
        [null, 'users', 'ssn', 'read'],
      ],
    ],
    [
      'DELETE … USING … RETURNING',
      'DELETE FROM users u USING banned b WHERE b.id = u.id RETURNING u.ssn',
      [
        [null, 'banned', 'id', 'read'],
        [null, 'users', 'id', 'read'],
        [null, 'users', 'ssn', 'read'],
      ],
    ],
    [
      'DELETE … RETURNING *',
      'DELETE FROM users WHERE id = 1 RETURNING *',
      [
        [null, 'users', 'id', 'read'],
        [null, 'users', null, 'read'],
      ],
    ],
    [
      "CTE: the inner read is qualified, the CTE's columns are not",
      'WITH x AS (SELECT ssn FROM users) SELECT x.ssn FROM x',
      [
        [null, 'users', 'ssn', 'read'],
        [null, null, 'ssn', 'read'],
      ],
    ],
    [
      'a CTE named like a table is the CTE',
      'WITH users AS (SELECT 1 AS ssn) SELECT ssn FROM users',
      [[null, null, 'ssn', 'read']],
    ],
    [
      'data-modifying CTE',
      'WITH d AS (DELETE FROM users WHERE id = 1 RETURNING ssn) SELECT * FROM d',
      [
        [null, 'users', 'id', 'read'],
        [null, 'users', 'ssn', 'read'],
        [null, null, null, 'read'],
      ],
    ],
    [
      'subquery in FROM',
      'SELECT s.ssn FROM (SELECT ssn FROM users) s',
      [
        [null, 'users', 'ssn', 'read'],
        [null, null, 'ssn', 'read'],
      ],
    ],
    [
      'correlated subquery: qualified names resolve outward',
      'SELECT id FROM t WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id)',
      [
        [null, 't', 'id', 'read'],
        [null, 'users', 'id', 'read'],
        [null, 't', 'user_id', 'read'],
      ],
    ],
    [
      'subquery: an unqualified name could belong to either query',
      'SELECT a FROM t WHERE b IN (SELECT ssn FROM users)',
      [
        [null, 't', 'a', 'read'],
        [null, 't', 'b', 'read'],
        [null, null, 'ssn', 'read'],
      ],
    ],
    [
      'UNION',
      'SELECT ssn FROM users UNION SELECT ssn FROM old_users',
      [
        [null, 'users', 'ssn', 'read'],
        [null, 'old_users', 'ssn', 'read'],
      ],
    ],
    [
      'COPY TO with a column list',
      'COPY public.users (id, ssn) TO STDOUT',
      [
        ['public', 'users', 'id', 'read'],
        ['public', 'users', 'ssn', 'read'],
      ],
    ],
    ['COPY TO without a list: every column', 'COPY users TO STDOUT', [[null, 'users', null, 'read']]],
    [
      'COPY FROM … WHERE',
      'COPY users (id, name) FROM STDIN WHERE id > 1',
      [
        [null, 'users', 'id', 'write'],
        [null, 'users', 'name', 'write'],
        [null, 'users', 'id', 'read'],
      ],
    ],
    ['COPY (query) TO', 'COPY (SELECT ssn FROM users) TO STDOUT', [[null, 'users', 'ssn', 'read']]],
    [
      'MERGE',
      'MERGE INTO users u USING src s ON s.id = u.id WHEN MATCHED THEN UPDATE SET ssn = s.ssn WHEN NOT MATCHED THEN INSERT (id, ssn) VALUES (s.id, s.ssn)',
      [
        [null, 'users', 'ssn', 'write'],
        [null, 'users', 'id', 'write'],
        [null, 'src', 'id', 'read'],
        [null, 'users', 'id', 'read'],
        [null, 'src', 'ssn', 'read'],
      ],
    ],
    ['EXPLAIN reads what it plans', 'EXPLAIN SELECT ssn FROM users', [[null, 'users', 'ssn', 'read']]],
    ['quoted identifiers keep their case', 'SELECT "SSN" FROM "Users"', [[null, 'Users', 'SSN', 'read']]],
    ['no columns', 'SELECT 1', []],
  ])('%s', (_name, sql, want) => {
    expect(cols(sql)).toEqual(tuples(want));
  });

  it('is set on every statement of a multi-statement text', () => {
    const c = classify('SELECT a FROM t; UPDATE u SET b = 1');
    expect(c.statements.map((s) => s.columns!.length)).toEqual([1, 1]);
  });

  it('walks deep nesting without recursion', () => {
    const depth = 400;
    const sql = `SELECT ${'('.repeat(depth)}ssn${')'.repeat(depth)} FROM users`;
    const c = classify(sql);
    if (c.parse_error === null)
      expect(c.statements[0]!.columns).toContainEqual(expect.objectContaining({ column: 'ssn' }));
  });
});
