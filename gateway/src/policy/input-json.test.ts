import { classify, initSqlParser, ShapeCache } from '../sql';
import { deepFreeze, statementsWithoutText } from '../sql/frozen';
import {
  buildBindInput,
  buildFunctionCallInput,
  buildParseInput,
  buildQueryInput,
  buildStartupInput,
} from './input';
import { connectionJson, inputJson, inputKey, listJson } from './input-json';
import type { ConnectionInfo, InputDocument } from './types';

function connection(): ConnectionInfo {
  return {
    id: 'c1',
    client_addr: '10.1.2.3',
    client_port: 51514,
    tls: Object.freeze({
      enabled: true,
      version: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
      client_cert_subject: null,
    }),
    user: 'alice',
    database: 'app',
    application_name: 'psql',
    parameters: Object.freeze({ user: 'alice', database: 'app', options: '-c search_path=app' }),
    options: Object.freeze({ search_path: 'app' }),
    protocol_version: '3.0',
    authenticated: true,
    transaction_status: 'I',
  };
}

beforeAll(async () => {
  await initSqlParser();
});

function documents(conn: ConnectionInfo): InputDocument[] {
  const opts = { maxSqlBytes: 64 };
  const frozen = (sql: string) => deepFreeze(classify(sql));
  const join = frozen('SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = $1');
  const prepared = { name: 'q1', sql: 'SELECT 1', statements: join.statements, parse_error: null };
  const out: InputDocument[] = [buildStartupInput({ ...conn, authenticated: false })];
  {
    for (const values of [true, false]) {
      const o = { ...opts, bindParameterValues: values };
      out.push(
        buildQueryInput(conn, 'DELETE FROM t', frozen('DELETE FROM t'), o),
        buildQueryInput(
          conn,
          'PREPARE p AS SELECT 1; EXECUTE p',
          classify('PREPARE p AS SELECT 1; EXECUTE p'),
          o,
        ),
        buildQueryInput(conn, `SELECT '${'é'.repeat(80)}'`, classify(`SELECT '${'é'.repeat(80)}'`), o),
        buildQueryInput(conn, 'SELEC nonsense', classify('SELEC nonsense'), o),
        buildParseInput(conn, { statementName: 's', sql: 'SELECT $1', paramTypes: [23] }, join, o),
        buildBindInput(
          conn,
          {
            portalName: 'p',
            statement: prepared,
            params: [
              { typeOid: 23, format: 1, value: Buffer.from([0, 0, 0, 7]) },
              { typeOid: 25, format: 0, value: Buffer.from('a "quoted" \u2028 value') },
              { typeOid: 0, format: 0, value: null },
            ],
          },
          o,
        ),
        buildBindInput(conn, { portalName: '', statement: null, params: [] }, o),
        buildFunctionCallInput(conn, { oid: 1598, args: [{ format: 0, value: Buffer.from('x') }] }),
      );
    }
  }
  return out;
}

describe('inputJson', () => {
  it('is byte for byte JSON.stringify of every kind of input document', () => {
    const conn = connection();
    for (const doc of documents(conn)) {
      expect(inputJson(doc)).toBe(JSON.stringify(doc));
      // Twice: the second time from the kept texts.
      expect(inputJson(doc)).toBe(JSON.stringify(doc));
    }
  });

  it('gives equal keys only to documents with equal texts', () => {
    const conn = connection();
    const docs = [...documents(conn), ...documents(connection())];
    const texts = new Map<string, string>();
    for (const doc of [...docs, ...docs]) {
      const key = inputKey(doc);
      const text = JSON.stringify(doc);
      expect(texts.get(key) ?? text).toBe(text);
      texts.set(key, text);
    }
    // The same document twice: the same (short) key, kept texts appear as numbers.
    const again = documents(conn)[1]!;
    expect(inputKey(again)).toBe(inputKey(again));
    expect(inputKey(again)).toMatch(/"connection":#\d+,/);
    expect(inputKey(again).length).toBeLessThan(inputJson(again).length);
    const before = inputKey(again);
    conn.transaction_status = 'E';
    expect(inputKey(again)).not.toBe(before);
  });

  it('sees every change of a connection field, including a new field', () => {
    const conn = connection();
    const doc = buildQueryInput(conn, 'SELECT 1', classify('SELECT 1'), { maxSqlBytes: 1024 });
    expect(inputJson(doc)).toBe(JSON.stringify(doc));
    conn.transaction_status = 'T';
    expect(inputJson(doc)).toContain('"transaction_status":"T"');
    conn.user = 'mallory';
    expect(inputJson(doc)).toContain('"user":"mallory"');
    conn.tls = Object.freeze({ ...conn.tls, enabled: false });
    expect(inputJson(doc)).toBe(JSON.stringify(doc));
    const rec = conn as unknown as Record<string, unknown>;
    rec.extra = 1;
    expect(inputJson(doc)).toBe(JSON.stringify(doc));
    delete rec.extra;
    expect(inputJson(doc)).toBe(JSON.stringify(doc));
    // Same values in the same places under another key.
    rec.extra = 1;
    expect(inputJson(doc)).toBe(JSON.stringify(doc));
    delete rec.extra;
    rec.other = 1;
    expect(inputJson(doc)).toBe(JSON.stringify(doc));
  });

  it('never keeps the text of a connection whose nested objects can change in place', () => {
    const conn = { ...connection(), parameters: { user: 'alice' } as Record<string, string> };
    expect(connectionJson(conn)).toBe(JSON.stringify(conn));
    conn.parameters.user = 'mallory';
    expect(connectionJson(conn)).toContain('"user":"mallory"');
    // Frozen on the outside only: still not kept.
    const inner = { v: 'a' };
    const shallow = {
      ...connection(),
      options: Object.freeze({ x: inner }) as unknown as Record<string, string>,
    };
    expect(connectionJson(shallow)).toContain('"v":"a"');
    inner.v = 'b';
    expect(connectionJson(shallow)).toContain('"v":"b"');
  });

  it('keeps the text of deeply frozen lists only', () => {
    const open = [{ a: 1 }];
    expect(listJson(open)).toBe('[{"a":1}]');
    open[0]!.a = 2;
    expect(listJson(open)).toBe('[{"a":2}]');
    const shallow = Object.freeze([{ a: 1 }]);
    expect(listJson(shallow)).toBe('[{"a":1}]');
    shallow[0]!.a = 3;
    expect(listJson(shallow)).toBe('[{"a":3}]');
    const frozen = deepFreeze([{ a: 1 }]);
    expect(listJson(frozen)).toBe('[{"a":1}]');
    expect(listJson(frozen)).toBe(listJson(frozen));
  });

  it('shares the text-free form of a frozen classification', () => {
    const c = deepFreeze(classify('SELECT a FROM t WHERE b = 1'));
    const a = statementsWithoutText(c.statements);
    expect(a).toBe(statementsWithoutText(c.statements));
    expect(Object.isFrozen(a)).toBe(true);
    expect(a[0]!.sql).toBe('');
    // A shape-cache hit (its own texts, the template's facts) shares the template's form.
    const shapes = new ShapeCache(10);
    const first = 'SELECT a FROM t WHERE b = 1';
    shapes.classify(shapes.key(first), first);
    const hit = shapes.get(shapes.key('SELECT a FROM t WHERE b = 7')!, 'SELECT a FROM t WHERE b = 7')!;
    expect(hit.statements[0]!.sql).toBe('SELECT a FROM t WHERE b = 7');
    const shared = statementsWithoutText(hit.statements);
    expect(shared).toBe(statementsWithoutText(shapes.get(shapes.key(first)!, first)!.statements));
    expect(Object.isFrozen(shared)).toBe(true);
    const open = classify('SELECT a FROM t WHERE b = 2');
    expect(statementsWithoutText(open.statements)).not.toBe(statementsWithoutText(open.statements));
  });
});
