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

/**
 * The input contract has one source, docs/policy-input.schema.json. The schema OPA's type checker
 * reads is generated from it (scripts/gen-opa-schema.js), and the TypeScript types the gateway
 * builds the input with are checked against it here, field by field: the same names, the same
 * optionality, the same JSON types. Adding a field to one side only fails this test.
 */
describe('one input contract: the JSON Schema, the OPA schema and the TypeScript types agree', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a plain CommonJS script
  const gen = require('../../../scripts/gen-opa-schema.js') as {
    opaInputSchema: () => OpaSchema;
    render: (s: OpaSchema) => string;
  };

  it('docs/opa-schemas/input.json is generated from docs/policy-input.schema.json', () => {
    const file = path.resolve(__dirname, '../../../docs/opa-schemas/input.json');
    expect(fs.readFileSync(file, 'utf8')).toBe(gen.render(gen.opaInputSchema()));
  });

  it('the OPA schema keeps no construct OPA cannot merge', () => {
    const text = JSON.stringify(gen.opaInputSchema());
    for (const k of ['allOf', 'oneOf', '"if"', '"then"', '"else"', '"not"', '"const"', '"enum"'])
      expect(text).not.toContain(k.startsWith('"') ? `${k}:` : `"${k}":`);
  });

  it('gateway/src/policy/types.ts InputDocument has exactly the fields and types of the schema', () => {
    const drift = compareTypeWithSchema(gen.opaInputSchema());
    expect(drift).toEqual([]);
  });
});

interface OpaSchema {
  type?: string | string[];
  properties?: Record<string, OpaSchema>;
  required?: string[];
  items?: OpaSchema;
  additionalProperties?: boolean | OpaSchema;
  anyOf?: OpaSchema[];
  $ref?: string;
  definitions?: Record<string, OpaSchema>;
}

/** Every difference between InputDocument (read with the TypeScript compiler) and the schema. */
function compareTypeWithSchema(root: OpaSchema): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the compiler API, test only
  const ts = require('typescript') as typeof import('typescript');
  const file = path.resolve(__dirname, 'types.ts');
  const program = ts.createProgram([file], { strict: true, exactOptionalPropertyTypes: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file)!;
  let inputType: import('typescript').Type | undefined;
  ts.forEachChild(source, (n) => {
    if (ts.isInterfaceDeclaration(n) && n.name.text === 'InputDocument')
      inputType = checker.getTypeAtLocation(n);
  });
  const drift: string[] = [];
  const resolve = (s: OpaSchema): OpaSchema =>
    s.$ref ? resolve(root.definitions![s.$ref.replace('#/definitions/', '')]!) : s;
  const schemaTypes = (s: OpaSchema): Set<string> => {
    const r = resolve(s);
    if (r.anyOf) return new Set(r.anyOf.flatMap((x) => [...schemaTypes(x)]));
    const t = r.type === undefined ? [] : Array.isArray(r.type) ? r.type : [r.type];
    return new Set(t.map((x) => (x === 'integer' ? 'number' : x)));
  };
  const objectOf = (s: OpaSchema): OpaSchema | undefined => {
    const r = resolve(s);
    if (r.anyOf) return r.anyOf.map(objectOf).find((x) => x !== undefined);
    return schemaTypes(r).has('object') ? r : undefined;
  };
  const arrayOf = (s: OpaSchema): OpaSchema | undefined => {
    const r = resolve(s);
    if (r.anyOf) return r.anyOf.map(arrayOf).find((x) => x !== undefined);
    return r.items;
  };
  const tsTypes = (t: import('typescript').Type): Set<string> => {
    const out = new Set<string>();
    for (const u of t.isUnion() ? t.types : [t]) {
      const f = u.flags;
      if (f & ts.TypeFlags.StringLike) out.add('string');
      else if (f & ts.TypeFlags.NumberLike) out.add('number');
      else if (f & ts.TypeFlags.BooleanLike) out.add('boolean');
      else if (f & ts.TypeFlags.Null) out.add('null');
      else if (f & ts.TypeFlags.Undefined) continue;
      else if (checker.isArrayType(u) || checker.isTupleType(u)) out.add('array');
      else out.add('object');
    }
    return out;
  };
  const visit = (t: import('typescript').Type, s: OpaSchema, at: string, depth: number): void => {
    if (depth > 6) return; // StatementInfo.prepared.inner is recursive
    const want = [...schemaTypes(s)].sort().join('|');
    const got = [...tsTypes(t)].sort().join('|');
    if (want !== got) drift.push(`${at}: TypeScript ${got}, schema ${want}`);
    const nonNull = t.isUnion()
      ? t.types.filter((u) => !(u.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined)))
      : [t];
    const first = nonNull[0];
    if (first === undefined) return;
    if (checker.isArrayType(first)) {
      const items = arrayOf(s);
      const el = checker.getTypeArguments(first as import('typescript').TypeReference)[0];
      if (items && el) visit(el, items, `${at}[_]`, depth + 1);
      return;
    }
    const obj = objectOf(s);
    if (!obj || !tsTypes(first).has('object')) return;
    if (obj.properties === undefined) {
      // A map (Record<string, string>): the values' type.
      const index = checker.getIndexInfosOfType(first)[0];
      if (index && typeof obj.additionalProperties === 'object')
        visit(index.type, obj.additionalProperties, `${at}[_]`, depth + 1);
      return;
    }
    const props = new Map(checker.getPropertiesOfType(first).map((p) => [p.name, p]));
    const required = new Set(obj.required ?? []);
    for (const name of new Set([...props.keys(), ...Object.keys(obj.properties)])) {
      const p = props.get(name);
      const sp = obj.properties[name];
      if (!p) drift.push(`${at}.${name}: in the schema, not in TypeScript`);
      else if (!sp) drift.push(`${at}.${name}: in TypeScript, not in the schema`);
      else {
        const optional = (p.flags & ts.SymbolFlags.Optional) !== 0;
        if (optional === required.has(name))
          drift.push(`${at}.${name}: ${optional ? 'optional' : 'required'} in TypeScript, not in the schema`);
        visit(checker.getTypeOfSymbol(p), sp, `${at}.${name}`, depth + 1);
      }
    }
  };
  if (!inputType) return ['InputDocument not found in types.ts'];
  visit(inputType, root, 'input', 0);
  return drift;
}
