import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import { classify, initSqlParser } from '../sql';
import {
  buildBindInput,
  buildFunctionCallInput,
  buildParseInput,
  buildQueryInput,
  buildStartupInput,
} from './input';
import type { ConnectionInfo, InputDocument } from './types';
import { ReplayStatements } from '../session/judged-ops';

const schema = JSON.parse(
  fs.readFileSync(path.resolve(__dirname, '../../../docs/policy-input.schema.json'), 'utf8'),
) as Record<string, unknown>;
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validate = ajv.compile(schema);

function expectValid(input: unknown): void {
  const ok = validate(JSON.parse(JSON.stringify(input)));
  if (!ok) throw new Error(`${JSON.stringify(validate.errors, null, 2)}\n${JSON.stringify(input, null, 2)}`);
}

const conn: ConnectionInfo = {
  id: '7f3c2a1b-1',
  client_addr: '10.1.2.3',
  client_port: 51514,
  tls: {
    enabled: true,
    version: 'TLSv1.3',
    cipher: 'TLS_AES_256_GCM_SHA384',
    client_cert_subject: 'CN=alice',
  },
  user: 'alice',
  database: 'app',
  application_name: 'psql',
  parameters: { user: 'alice', database: 'app', application_name: 'psql', options: '-c role=admin' },
  options: { role: 'admin' },
  protocol_version: '3.0',
  authenticated: true,
  transaction_status: 'T',
};
const opts = { maxSqlBytes: 16 * 1024 };

const SQL = [
  'SELECT 1',
  'SELECT id FROM public.orders WHERE id = $1',
  'DELETE FROM orders',
  'UPDATE t SET a = 1 WHERE b = 2',
  'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
  'SELECT pg_terminate_backend(123), set_config($$role$$, $$admin$$, false)',
  'COPY t TO STDOUT',
  "COPY t FROM PROGRAM 'id'",
  "COPY (SELECT 1) TO '/tmp/x'",
  'BEGIN READ ONLY; SELECT 1; COMMIT',
  'SET ROLE admin',
  'RESET ALL',
  'SET LOCAL statement_timeout = 5',
  'PREPARE p AS DELETE FROM t; EXECUTE p; DEALLOCATE p',
  'DEALLOCATE ALL',
  'DISCARD ALL',
  'DO $$ BEGIN END $$',
  'CREATE TABLE t2 (a int)',
  'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
  'ALTER SYSTEM SET work_mem = 1',
  'GRANT SELECT ON t TO bob',
  'EXPLAIN ANALYZE DELETE FROM t',
  'SELECT * INTO t3 FROM t',
  'SELEC oops',
  '',
];

beforeAll(async () => {
  await initSqlParser();
});

describe('docs/policy-input.schema.json accepts what the builders produce', () => {
  it('startup', () => {
    expectValid(buildStartupInput(conn));
    expectValid(
      buildStartupInput({ ...conn, application_name: null, authenticated: false, transaction_status: 'I' }),
    );
  });

  it.each(SQL)('Query and Parse of %j with the real classifier', (sql) => {
    const registry = new ReplayStatements();
    const c = registry.expand(classify(sql));
    expectValid(buildQueryInput(conn, sql, c, opts));
    expectValid(buildQueryInput(conn, sql, c, { maxSqlBytes: 4 }));
    expectValid(buildParseInput(conn, { statementName: 's1', sql, paramTypes: [23, 0] }, c, opts));
    registry.applied(c);
  });

  it('EXECUTE with the inner statement filled from the registry', () => {
    const registry = new ReplayStatements();
    registry.applied(classify('PREPARE p AS DELETE FROM t WHERE id = $1'));
    const input = buildQueryInput(conn, 'EXECUTE p(1)', registry.expand(classify('EXECUTE p(1)')), opts);
    expect(input.statements[0]?.prepared?.inner?.command).toBe('DELETE');
    expectValid(input);
  });

  it('Bind (known and unknown statement) and FunctionCall', () => {
    const sql = 'SELECT * FROM t WHERE id = $1 AND flag = $2';
    const statement = { name: 's1', sql, statements: classify(sql).statements, parse_error: null };
    const params = [
      { typeOid: 23, format: 1 as const, value: Buffer.from([0, 0, 0, 1]) },
      { typeOid: 16, format: 0 as const, value: Buffer.from('t') },
      { typeOid: 17, format: 1 as const, value: Buffer.from([1, 2, 3]) },
      { typeOid: 25, format: 0 as const, value: null },
      { typeOid: 701, format: 1 as const, value: Buffer.from([0x7f, 0xf8, 0, 0, 0, 0, 0, 0]) },
    ];
    expectValid(buildBindInput(conn, { portalName: '', statement, params }, opts));
    expectValid(buildBindInput(conn, { portalName: 'c1', statement: null, params: [] }, opts));
    expectValid(
      buildBindInput(conn, { portalName: '', statement, params }, { maxSqlBytes: 5, maxParamBytes: 1 }),
    );
    expectValid(
      buildFunctionCallInput(conn, { oid: 2096, args: [{ format: 1, value: Buffer.from([0, 0, 0, 1]) }] }),
    );
  });

  it('rejects documents outside the contract', () => {
    const good = buildQueryInput(conn, 'SELECT 1', classify('SELECT 1'), opts);
    const bad: unknown[] = [
      { ...good, version: 2 },
      { ...good, extra: true },
      { ...good, phase: 'startup' },
      { ...good, connection: { ...good.connection, tls: { enabled: true } } },
      { ...good, message: { type: 'Query', sql: 'x' } },
      { ...good, message: { type: 'Query', sql: 'x', truncated: false, portal_name: '' } },
      { ...good, statements: [{ ...good.statements[0], surprise: 1 }] },
      { ...good, parse_error: 'syntax error' },
      {
        ...buildFunctionCallInput(conn, { oid: 1, args: [] }),
        message: {
          type: 'FunctionCall',
          function_oid: 1,
          truncated: false,
          arguments: [{ type_oid: 0, format: 'text', value: null, encoding: 'decoded' }],
        },
      },
    ];
    for (const doc of bad) expect(validate(JSON.parse(JSON.stringify(doc)) as InputDocument)).toBe(false);
  });
});
