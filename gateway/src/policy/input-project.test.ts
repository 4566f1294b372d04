import { ErrorCodes, PgwardError } from '../errors';
import { deepFreeze } from '../sql/frozen';
import type { LoadedBundle } from './bundle';
import { minimalPaths } from './input-paths';
import { cut, decisionTime, evaluatedInput, pathTrie, reaches, readsQueryText } from './input-project';
import { bundleInputPaths } from './opa-engine';
import type { ConnectionInfo, InputDocument } from './types';

/** The fields the cut is tested on; the rest of a ConnectionInfo plays no part. */
function conn(): ConnectionInfo {
  const tls = Object.freeze({ enabled: false, version: null, cipher: null, client_cert_subject: null });
  const fields = {
    id: 'c-1',
    client_port: 5000,
    user: 'app',
    tls,
    parameters: Object.freeze({ user: 'app' }),
  };
  return { ...fields, authenticated: true, transaction_status: 'I' } as unknown as ConnectionInfo;
}

const statements = deepFreeze([
  { command: 'SELECT', sql: 'SELECT 1', relations: [{ name: 't' }] },
  { command: 'DELETE', sql: 'DELETE FROM t', relations: [{ name: 'u' }] },
]);

function doc(c: ConnectionInfo = conn()): InputDocument {
  return {
    version: 1,
    phase: 'message',
    connection: c,
    message: { type: 'Query', sql: 'SELECT 1; DELETE FROM t', truncated: false },
    statements,
    parse_error: null,
  } as unknown as InputDocument;
}

const NOW = Date.parse('2026-12-05T02:30:15.250Z');
const now = () => NOW;

describe('minimalPaths', () => {
  it('drops duplicates and paths below another, "*" covering any key', () => {
    expect(
      minimalPaths([
        ['message', 'sql'],
        ['message'],
        ['statements', '*', 'sql'],
        ['statements', '0', 'sql'],
        ['a'],
      ]),
    ).toEqual([['a'], ['message'], ['statements', '*', 'sql']]);
    expect(minimalPaths([['x'], []])).toEqual([[]]);
  });
});

describe('evaluatedInput', () => {
  it('keeps exactly the paths, "*" reaching every element', () => {
    const d = evaluatedInput(
      doc(),
      pathTrie([
        ['statements', '*', 'command'],
        ['connection', 'user'],
      ]),
      now,
    );
    expect(d).toEqual({
      connection: { user: 'app' },
      statements: [{ command: 'SELECT' }, { command: 'DELETE' }],
    });
  });

  it('is the whole document (and the time) for the empty path', () => {
    const full = doc();
    const d = evaluatedInput(full, pathTrie([[]]), now);
    expect(d).toEqual({ ...full, time: decisionTime(NOW) });
    expect(d.connection).toBe(full.connection);
  });

  it('adds only the parts of time a path reaches', () => {
    expect(evaluatedInput(doc(), pathTrie([['time', 'hour']]), now)).toEqual({ time: { hour: 2 } });
    expect(evaluatedInput(doc(), pathTrie([['time']]), now).time).toEqual({
      rfc3339: '2026-12-05T02:30:15.250Z',
      ns: NOW * 1e6,
      weekday: 6,
      hour: 2,
      minute: 30,
    });
    expect(evaluatedInput(doc(), pathTrie([['message', 'sql']]), now)).not.toHaveProperty('time');
  });

  it('a named key of an array keeps no element (undefined in Rego)', () => {
    expect(cut(statements, pathTrie([['x', 'command']]) as never)).toEqual([]);
  });

  it('keeps the cut of a frozen list and of an unchanged connection, and follows a change', () => {
    const trie = pathTrie([
      ['statements', '*', 'command'],
      ['connection', 'transaction_status'],
    ]);
    const c = conn();
    const a = evaluatedInput(doc(c), trie, now);
    const b = evaluatedInput(doc(c), trie, now);
    expect(b.statements).toBe(a.statements);
    expect(b.connection).toBe(a.connection);
    expect(Object.isFrozen(a.connection)).toBe(true);
    c.transaction_status = 'T';
    const d = evaluatedInput(doc(c), trie, now);
    expect(d.connection).toEqual({ transaction_status: 'T' });
    // A field the paths do not keep changes nothing.
    c.client_port = 1;
    expect(evaluatedInput(doc(c), trie, now).connection).toBe(d.connection);
    // The session's own objects are not frozen by the cut.
    expect(Object.isFrozen(c)).toBe(false);
  });

  it('does not freeze what it keeps whole', () => {
    const c = { ...conn(), parameters: { user: 'app' } };
    evaluatedInput(doc(c), pathTrie([['connection', 'parameters']]), now);
    expect(Object.isFrozen(c.parameters)).toBe(false);
  });
});

describe('readsQueryText', () => {
  const reads = (...paths: string[]) =>
    readsQueryText(pathTrie(paths.map((p) => (p === '' ? [] : p.split('.')))));

  it('is false for paths that never reach a text (the shipped kind), nor a prepared statement (no template has one)', () => {
    expect(
      reads('connection.user', 'message.type', 'statements.*.command', 'statements.*.relations.*.name'),
    ).toBe(false);
    expect(reads('statements.*.prepared.inner.prepared.inner.command', 'message.statement.parse_error')).toBe(
      false,
    );
  });

  it('is true for the text, its length flag, a statement text, or a whole above them', () => {
    for (const p of [
      'message.sql',
      'message.truncated',
      'message',
      'message.*',
      'statements.*.sql',
      'statements.*.*',
      'statements',
      'statements.*',
      '*',
      '',
    ])
      expect([p, reads('connection.user', p)]).toEqual([p, true]);
  });
});

describe('reaches', () => {
  it('answers for a path and "*"', () => {
    const t = pathTrie([['message', '*', '*', 'value']]);
    expect(reaches(t, ['message', 'parameters', '*', 'value'])).toBe(true);
    expect(reaches(t, ['message', 'parameters', '*', 'type_oid'])).toBe(false);
    expect(reaches(pathTrie([['message', 'parameters']]), ['message', 'parameters', '*', 'value'])).toBe(
      true,
    );
    expect(reaches(pathTrie([['connection']]), ['message', 'parameters', '*', 'value'])).toBe(false);
  });
});

describe('bundleInputPaths', () => {
  const bundle = (data: Record<string, unknown>, metadata?: Record<string, unknown>): LoadedBundle =>
    ({
      source: 'b.tar.gz',
      data,
      wasm: new Uint8Array(),
      files: new Map(),
      manifest: { revision: 'r', ...(metadata ? { metadata } : {}) },
    }) as unknown as LoadedBundle;

  it('reads metadata.pgward.input_paths, null without it', () => {
    expect(
      bundleInputPaths(bundle({}, { pgward: { input_paths: [['message', 'sql'], ['message']] } })),
    ).toEqual([['message']]);
    expect(bundleInputPaths(bundle({}, { opa_version: '1' }))).toBeNull();
  });

  it('refuses a malformed list', () => {
    expect(() => bundleInputPaths(bundle({}, { pgward: { input_paths: ['message'] } }))).toThrow(
      expect.objectContaining({ code: ErrorCodes.BUNDLE_LOAD }),
    );
  });

  it('refuses data that still declares pgward.input_options, naming the replacement', () => {
    let err: unknown;
    try {
      bundleInputPaths(bundle({ pgward: { input_options: { sql_text: false } } }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PgwardError);
    expect((err as PgwardError).code).toBe('PGWARD_ERR_BUNDLE_INPUT_OPTIONS');
    expect((err as PgwardError).message).toMatch(/metadata\.pgward\.input_paths/);
  });
});

describe('evaluatedInput when the paths keep every field whole', () => {
  it('is the document itself (no copy), and a copy as soon as time or a narrower path is read', () => {
    const d = doc();
    const all = [['version'], ['phase'], ['connection'], ['message'], ['statements'], ['parse_error']];
    expect(evaluatedInput(d, pathTrie(all), now)).toBe(d);
    expect(evaluatedInput(d, pathTrie([...all, ['time', 'hour']]), now)).toEqual({ ...d, time: { hour: 2 } });
    expect(evaluatedInput(d, pathTrie([...all.slice(1), ['version', 'x']]), now)).not.toBe(d);
  });
});

describe('evaluatedInput with a document that brings its own time', () => {
  it('keeps it', () => {
    const time = decisionTime(Date.parse('2026-12-06T03:00:00Z'));
    const d = { ...doc(), time };
    expect(evaluatedInput(d, pathTrie([[]]), now).time).toBe(time);
    expect(evaluatedInput(d, pathTrie([['time', 'weekday']]), now).time).toEqual({ weekday: 0 });
  });
});

describe('reaches with "*" in the question', () => {
  it('looks at every key, not one of them', () => {
    const t = pathTrie([
      ['message', 'parameters', 'length'],
      ['message', 'parameters', '*', 'value'],
    ]);
    expect(reaches(t, ['message', 'parameters', '*', 'value'])).toBe(true);
    const u = pathTrie([['message', 'arguments', '*', 'value']]);
    expect(reaches(u, ['message', '*', '*', 'value'])).toBe(true);
    expect(reaches(u, ['message', '*', '*', 'type_oid'])).toBe(false);
    // A value kept whole reaches everything below it.
    expect(reaches(pathTrie([['message', 'sql']]), ['message', '*', '*', 'type_oid'])).toBe(true);
  });
});
