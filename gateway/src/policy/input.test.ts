import {
  buildBindInput,
  buildFunctionCallInput,
  buildParseInput,
  buildQueryInput,
  buildStartupInput,
  decodeParameter,
  parsePgBool,
  truncateUtf8,
  UNKNOWN_STATEMENT_ERROR,
} from './input';
import type { BindParameter, ConnectionInfo } from './types';
import { del, ok, sel } from '../sql/test-fixtures';

const conn: ConnectionInfo = {
  id: 'c1',
  client_addr: '10.1.2.3',
  client_port: 51514,
  tls: { enabled: true, version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', client_cert_subject: null },
  user: 'alice',
  database: 'app',
  application_name: 'psql',
  parameters: { user: 'alice', database: 'app', application_name: 'psql', options: '-c search_path=app' },
  options: { search_path: 'app' },
  protocol_version: '3.0',
  authenticated: true,
  transaction_status: 'I',
};

describe('input builders', () => {
  it('startup', () => {
    expect(buildStartupInput(conn)).toEqual({
      version: 1,
      phase: 'startup',
      connection: conn,
      message: { type: 'StartupMessage' },
      statements: [],
      parse_error: null,
    });
  });

  it('query carries the classification', () => {
    const input = buildQueryInput(conn, 'DELETE FROM t', ok(del), { maxSqlBytes: 1024 });
    expect(input).toEqual({
      version: 1,
      phase: 'message',
      connection: conn,
      message: { type: 'Query', sql: 'DELETE FROM t', truncated: false },
      statements: [del],
      parse_error: null,
    });
    const bad = buildQueryInput(
      conn,
      'SELEC',
      { statements: [], parse_error: 'syntax error at or near "SELEC"' },
      { maxSqlBytes: 1024 },
    );
    expect(bad.parse_error).toMatch(/syntax error/);
  });

  it('query over maxSqlBytes: the text is cut and marked, the statements stay whole', () => {
    const sql = `SELECT 1; ${'-- é\n'.repeat(10)}DELETE FROM t`;
    const input = buildQueryInput(conn, sql, ok(sel, del), { maxSqlBytes: 20 });
    expect(input.message.truncated).toBe(true);
    expect(Buffer.byteLength(input.message.sql!)).toBeLessThanOrEqual(20);
    expect(sql.startsWith(input.message.sql!)).toBe(true);
    expect(input.statements.map((st) => st.command)).toEqual(['SELECT', 'DELETE']);
    for (const st of input.statements) expect(Buffer.byteLength(st.sql)).toBeLessThanOrEqual(20);
    expect(input.parse_error).toBeNull();
  });

  it('truncateUtf8 never splits a character', () => {
    for (let max = 0; max < 12; max++) {
      const { text } = truncateUtf8('aé€😀b', max);
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(max);
      expect('aé€😀b'.startsWith(text)).toBe(true);
      expect(text).not.toContain('\ufffd');
    }
    expect(truncateUtf8('abc', 3)).toEqual({ text: 'abc', truncated: false });
  });

  it('parse', () => {
    const input = buildParseInput(
      conn,
      { statementName: 's1', sql: 'SELECT $1', paramTypes: [23] },
      ok(sel),
      {
        maxSqlBytes: 100,
      },
    );
    expect(input.message).toEqual({
      type: 'Parse',
      sql: 'SELECT $1',
      truncated: false,
      statement_name: 's1',
      param_types: [23],
    });
    expect(input.statements).toEqual([sel]);
    const long = buildParseInput(conn, { statementName: '', sql: 'SELECT 12345', paramTypes: [] }, ok(sel), {
      maxSqlBytes: 5,
    });
    expect(long).toMatchObject({ parse_error: null, message: { truncated: true } });
    expect(long.statements.map((st) => st.command)).toEqual(['SELECT']);
  });

  it('bind is judged by the statement it binds', () => {
    const statement = { name: 's1', sql: 'DELETE FROM t', statements: [del], parse_error: null };
    const input = buildBindInput(
      conn,
      {
        portalName: '',
        statement,
        params: [
          { typeOid: 23, format: 1, value: Buffer.from([0, 0, 0, 42]) },
          { typeOid: 25, format: 0, value: null },
        ],
      },
      { maxSqlBytes: 100 },
    );
    expect(input.message).toEqual({
      type: 'Bind',
      portal_name: '',
      statement,
      truncated: false,
      parameters: [
        { type_oid: 23, format: 'binary', value: 42, encoding: 'decoded' },
        { type_oid: 25, format: 'text', value: null, encoding: 'null' },
      ],
    });
    expect(input.statements).toEqual([del]);
    expect(input.parse_error).toBeNull();
  });

  it('bind of an unknown statement carries a parse_error; long values and SQL are cut', () => {
    const unknown = buildBindInput(
      conn,
      { portalName: 'p', statement: null, params: [] },
      { maxSqlBytes: 100 },
    );
    expect(unknown).toMatchObject({
      statements: [],
      parse_error: UNKNOWN_STATEMENT_ERROR,
      message: { statement: null },
    });
    const long = buildBindInput(
      conn,
      {
        portalName: '',
        statement: { name: '', sql: 'SELECT 1 -- long', statements: [sel], parse_error: null },
        params: [{ typeOid: 25, format: 0, value: Buffer.from('x'.repeat(100)) }],
      },
      { maxSqlBytes: 8, maxParamBytes: 10 },
    );
    expect(long.message.truncated).toBe(true);
    expect(long.message.parameters![0]!.value).toBe('x'.repeat(10));
    expect(long.message.statement).toEqual({
      name: '',
      sql: 'SELECT 1',
      statements: [sel],
      parse_error: null,
    });
    expect(long.parse_error).toBeNull();
  });

  it('function call', () => {
    const input = buildFunctionCallInput(conn, {
      oid: 2096,
      args: [
        { format: 1, value: Buffer.from([0, 0, 0x30, 0x39]) },
        { typeOid: 23, format: 1, value: Buffer.from([0, 0, 0, 7]) },
      ],
    });
    expect(input.message).toEqual({
      type: 'FunctionCall',
      function_oid: 2096,
      truncated: false,
      arguments: [
        { type_oid: 0, format: 'binary', value: 'AAAwOQ==', encoding: 'base64' },
        { type_oid: 23, format: 'binary', value: 7, encoding: 'decoded' },
      ],
    });
    expect(input.statements).toEqual([]);
  });
});

describe('decodeParameter', () => {
  const be = (n: number, size: 2 | 4) => {
    const b = Buffer.alloc(size);
    if (size === 2) b.writeInt16BE(n);
    else b.writeInt32BE(n);
    return b;
  };
  const i8 = (n: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(n);
    return b;
  };
  const f4 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeFloatBE(n);
    return b;
  };
  const f8 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(n);
    return b;
  };
  const cases: [string, number, 0 | 1, Buffer | null, BindParameter['value'], BindParameter['encoding']][] = [
    ['null', 23, 1, null, null, 'null'],
    ['bool binary true', 16, 1, Buffer.from([1]), true, 'decoded'],
    ['bool binary false', 16, 1, Buffer.from([0]), false, 'decoded'],
    ['bool binary bad', 16, 1, Buffer.from([2]), 'Ag==', 'base64'],
    ['bool text t', 16, 0, Buffer.from('t'), true, 'decoded'],
    ['bool text " Yes "', 16, 0, Buffer.from(' Yes '), true, 'decoded'],
    ['bool text of', 16, 0, Buffer.from('of'), false, 'decoded'],
    ['bool text o (ambiguous)', 16, 0, Buffer.from('o'), 'o', 'decoded'],
    ['bool text junk', 16, 0, Buffer.from('maybe'), 'maybe', 'decoded'],
    ['int2 binary', 21, 1, be(-2, 2), -2, 'decoded'],
    ['int4 binary', 23, 1, be(2147483647, 4), 2147483647, 'decoded'],
    ['int4 binary wrong length', 23, 1, Buffer.from([1, 2]), 'AQI=', 'base64'],
    ['int4 text', 23, 0, Buffer.from(' -42 '), -42, 'decoded'],
    ['int4 text out of range', 23, 0, Buffer.from('2147483648'), '2147483648', 'decoded'],
    ['int4 text hex stays text', 23, 0, Buffer.from('0x10'), '0x10', 'decoded'],
    ['int2 text out of range', 21, 0, Buffer.from('40000'), '40000', 'decoded'],
    ['int8 binary safe', 20, 1, i8(9007199254740991n), 9007199254740991, 'decoded'],
    ['int8 binary big', 20, 1, i8(-9223372036854775808n), '-9223372036854775808', 'decoded'],
    ['int8 text big', 20, 0, Buffer.from('9007199254740993'), '9007199254740993', 'decoded'],
    ['oid binary', 26, 1, Buffer.from([0xff, 0xff, 0xff, 0xff]), 4294967295, 'decoded'],
    ['float4 binary', 700, 1, f4(1.5), 1.5, 'decoded'],
    ['float8 binary', 701, 1, f8(-0.25), -0.25, 'decoded'],
    ['float8 binary NaN', 701, 1, f8(NaN), 'NaN', 'decoded'],
    ['float8 binary -Infinity', 701, 1, f8(-Infinity), '-Infinity', 'decoded'],
    ['float8 text', 701, 0, Buffer.from('1e3'), 1000, 'decoded'],
    ['float8 text Infinity', 701, 0, Buffer.from('Infinity'), 'Infinity', 'decoded'],
    ['text text', 25, 0, Buffer.from('héllo'), 'héllo', 'decoded'],
    ['text binary', 25, 1, Buffer.from('héllo'), 'héllo', 'decoded'],
    ['varchar binary', 1043, 1, Buffer.from('v'), 'v', 'decoded'],
    ['bpchar binary', 1042, 1, Buffer.from('c  '), 'c  ', 'decoded'],
    ['name binary', 19, 1, Buffer.from('pg_class'), 'pg_class', 'decoded'],
    ['text binary invalid utf-8', 25, 1, Buffer.from([0xff, 0xfe]), '//4=', 'base64'],
    ['text text invalid utf-8', 25, 0, Buffer.from([0xc3]), 'ww==', 'base64'],
    ['json binary', 114, 1, Buffer.from('{"a":1}'), '{"a":1}', 'decoded'],
    ['jsonb binary', 3802, 1, Buffer.from('\x01{"a":1}'), '{"a":1}', 'decoded'],
    ['jsonb binary bad version', 3802, 1, Buffer.from('\x02{}'), 'Ant9', 'base64'],
    ['jsonb text', 3802, 0, Buffer.from('{"a":1}'), '{"a":1}', 'decoded'],
    [
      'uuid binary',
      2950,
      1,
      Buffer.from('a0eebc999c0b4ef8bb6d6bb9bd380a11', 'hex'),
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      'decoded',
    ],
    [
      'uuid text',
      2950,
      0,
      Buffer.from('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'),
      'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
      'decoded',
    ],
    ['numeric text', 1700, 0, Buffer.from('12345678901234567890.5'), '12345678901234567890.5', 'decoded'],
    ['numeric binary', 1700, 1, Buffer.from([0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), 'AAEAAAAAAAAAAQ==', 'base64'],
    ['bytea binary', 17, 1, Buffer.from([0, 1, 2]), 'AAEC', 'base64'],
    ['bytea text hex', 17, 0, Buffer.from('\\x000102'), 'AAEC', 'base64'],
    ['bytea text escape', 17, 0, Buffer.from('ab\\000'), 'ab\\000', 'decoded'],
    ['date text', 1082, 0, Buffer.from('2024-01-31'), '2024-01-31', 'decoded'],
    ['timestamp text', 1114, 0, Buffer.from('2024-01-31 12:00:00'), '2024-01-31 12:00:00', 'decoded'],
    ['date binary', 1082, 1, Buffer.from([0, 0, 0x22, 0x33]), 'AAAiMw==', 'base64'],
    ['unknown oid 0 text', 0, 0, Buffer.from('anything'), 'anything', 'decoded'],
    ['unknown oid 0 binary', 0, 1, Buffer.from([9]), 'CQ==', 'base64'],
    ['text with NUL', 25, 0, Buffer.from('a\0b'), 'YQBi', 'base64'],
  ];
  it.each(cases)('%s', (_name, oid, format, bytes, value, encoding) => {
    expect(decodeParameter(oid, format, bytes)).toEqual({
      type_oid: oid,
      format: format === 0 ? 'text' : 'binary',
      value,
      encoding,
    });
  });

  it('cuts long values at maxBytes', () => {
    expect(decodeParameter(25, 0, Buffer.from('ééé'), 3).value).toBe('é');
    expect(decodeParameter(17, 1, Buffer.alloc(10), 4).value).toBe(Buffer.alloc(4).toString('base64'));
  });

  it('parsePgBool follows boolin', () => {
    const t = ['t', 'tr', 'TRUE', 'y', 'yes', 'on', '1', ' true\n'];
    const f = ['f', 'fal', 'false', 'n', 'no', 'of', 'off', '0'];
    const bad = ['', 'o', 'truee', '01', 'nope', 'offf', '2'];
    for (const s of t) expect(parsePgBool(s)).toBe(true);
    for (const s of f) expect(parsePgBool(s)).toBe(false);
    for (const s of bad) expect(parsePgBool(s)).toBeNull();
  });
});

const minimalConn: ConnectionInfo = {
  id: 'c',
  client_addr: '127.0.0.1',
  client_port: 1,
  tls: { enabled: false, version: null, cipher: null, client_cert_subject: null },
  user: 'u',
  database: 'd',
  application_name: null,
  parameters: {},
  options: {},
  protocol_version: '3.0',
  authenticated: true,
  transaction_status: 'I',
};

describe('Bind parameters when the bundle does not read values', () => {
  it('keeps type, format and NULL-ness, and omits the values', () => {
    const mk = (v: string) =>
      buildBindInput(
        minimalConn,
        {
          portalName: '',
          statement: null,
          params: [
            { typeOid: 23, format: 0, value: Buffer.from(v) },
            { typeOid: 25, format: 1, value: null },
          ],
        },
        { maxSqlBytes: 1000, bindParameterValues: false },
      );
    const a = mk('1');
    expect(a.message.parameters).toEqual([
      { type_oid: 23, format: 'text', value: null, encoding: 'omitted' },
      { type_oid: 25, format: 'binary', value: null, encoding: 'null' },
    ]);
    // Inputs that differ only in values are identical: the decision cache can answer them.
    expect(JSON.stringify(mk('2'))).toBe(JSON.stringify(a));
  });
});
