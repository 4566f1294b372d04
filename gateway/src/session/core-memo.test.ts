/**
 * The repeated-frame memo (policy/frame-judge.ts TextMemo) under attack: scenarios through
 * SessionCore. Each asserts what pgward must do whether or not the memo is used.
 */
import { encodeBind, encodeExecute, encodeParse, encodeQuery, encodeSync } from '../protocol';
import { initSqlParser } from '../sql';
import { Harness, RuleEngine, pg, types } from './core-harness.test-helper';
import type { BundleInfo, Decision, InputDocument } from '../policy/types';

beforeAll(async () => {
  await initSqlParser();
});

const Q = (sql: string): Buffer => encodeQuery(sql);
/** "SELECT 'é'" as UTF-8 bytes: C3 A9 inside the literal. */
const HIGH = Buffer.concat([Buffer.from("SELECT '"), Buffer.from([0xc3, 0xa9]), Buffer.from("'")]);
const HIGH_Q = (): Buffer => {
  const body = Buffer.concat([HIGH, Buffer.from([0])]);
  const b = Buffer.alloc(5);
  b[0] = 0x51;
  b.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([b, body]);
};

const nonStartup = (h: Harness) => h.decisions.filter((d) => d.input.message.type !== 'StartupMessage');

function row(h: Harness, frame: Buffer, status: 'I' | 'T' = 'I'): void {
  const r = h.client(frame);
  expect(types(r.up)).toBe('Q');
  h.server(pg.complete('SELECT 1'), pg.ready(status));
}

describe('repeated frames: lexical state', () => {
  it('a confirmed SET client_encoding between repeats: the repeat is read under the new encoding', () => {
    const h = new Harness();
    h.login();
    for (let i = 0; i < 3; i++) row(h, HIGH_Q());
    expect(h.engine.inputs.at(-1)!.message.sql).toBe("SELECT 'é'");
    h.client(Q("SET client_encoding TO 'LATIN1'"));
    h.server(pg.complete('SET'), pg.param('client_encoding', 'LATIN1'), pg.ready());
    expect(h.diverged).toEqual([]);
    row(h, HIGH_Q());
    expect(h.engine.inputs.at(-1)!.message.sql).toBe("SELECT 'Ã©'");
  });

  it('pipelined behind an unanswered SET client_encoding, a repeat is not reused (refused as changing)', () => {
    const h = new Harness();
    h.login();
    const r = h.client(HIGH_Q(), HIGH_Q(), Q("SET client_encoding TO 'LATIN1'"), HIGH_Q());
    expect(types(r.up)).toBe('QQQQ');
    const codes = nonStartup(h).map((d) => d.decision.error_code);
    expect(codes).toEqual([null, null, null, 'PGWARD_ERR_SQL_LEXICAL_CHANGING']);
    expect(r.up[3]!.body.includes(Buffer.from([0xc3, 0xa9]))).toBe(false);
  });

  it('a ROLLBACK that undoes SET client_encoding: the repeat is read under the restored encoding', () => {
    const h = new Harness();
    h.login();
    h.client(Q('BEGIN'));
    h.server(pg.complete('BEGIN'), pg.ready('T'));
    h.client(Q("SET client_encoding TO 'LATIN1'"));
    h.server(pg.complete('SET'), pg.param('client_encoding', 'LATIN1'), pg.ready('T'));
    for (let i = 0; i < 3; i++) row(h, HIGH_Q(), 'T');
    expect(h.engine.inputs.at(-1)!.message.sql).toBe("SELECT 'Ã©'");
    h.client(Q('ROLLBACK'));
    h.server(pg.complete('ROLLBACK'), pg.param('client_encoding', 'UTF8'), pg.ready('I'));
    expect(h.diverged).toEqual([]);
    row(h, HIGH_Q());
    expect(h.engine.inputs.at(-1)!.message.sql).toBe("SELECT 'é'");
  });
});

describe('repeated frames: the prepared-statement namespace', () => {
  /** Denies an EXECUTE whose statement reads the table "secret" (a PREPARE of it is allowed). */
  class ExecuteEngine extends RuleEngine {
    override evaluate(input: InputDocument): Decision {
      const d = super.evaluate(input);
      const bad = input.statements.some(
        (s) => s.prepared?.kind === 'execute' && (s.prepared.inner?.sql ?? '').includes('secret'),
      );
      return bad ? { ...d, allow: false, reasons: ['secret'] } : d;
    }
  }

  it.each(["SELECT ts_stat('EXECUTE p')", 'EXPLAIN ANALYZE EXECUTE p'])(
    'EXECUTE (%s) is judged by what the name means now, after repeats',
    (X) => {
      const h = new Harness({ engine: new ExecuteEngine() });
      h.login();
      h.client(Q('PREPARE p AS SELECT 1'));
      h.server(pg.complete('PREPARE'), pg.ready());
      for (let i = 0; i < 3; i++) row(h, Q(X));
      expect(nonStartup(h).every((d) => d.decision.allow)).toBe(true);
      h.client(Q('DEALLOCATE p'));
      h.server(pg.complete('DEALLOCATE'), pg.ready());
      h.client(Q('PREPARE p AS SELECT * FROM secret'));
      h.server(pg.complete('PREPARE'), pg.ready());
      expect(h.core.requests.namespace.confirmedEntry('p')).toMatchObject({
        ref: { sql: 'SELECT * FROM secret' },
      });
      const r = h.client(Q(X));
      expect(nonStartup(h).at(-1)!.decision.allow).toBe(false);
      expect(r.up[0]!.body.toString()).not.toContain('EXECUTE');
    },
  );

  it('a driver re-parsing its unnamed statement, pipelined: every Bind binds the Parse just before it', () => {
    const h = new Harness();
    h.login();
    const cycle = (sql: string): Buffer[] => [
      encodeParse('', sql),
      encodeBind('', '', []),
      encodeExecute(''),
      encodeSync(),
    ];
    const r = h.client(
      ...cycle('SELECT 1'),
      ...cycle('SELECT 1'),
      ...cycle('SELECT 1'),
      ...cycle('DELETE FROM t'),
    );
    const ds = nonStartup(h);
    expect(ds.map((d) => `${d.input.message.type}:${d.decision.allow}`)).toEqual([
      'Parse:true',
      'Bind:true',
      'Parse:true',
      'Bind:true',
      'Parse:true',
      'Bind:true',
      'Parse:false',
      'Bind:false',
    ]);
    expect(types(r.up)).toContain('P');
  });
});

describe('repeated frames: connection state, bundles, audit', () => {
  /** Denies SELECT 1 inside a transaction block, or once the active bundle is "r2". */
  class StatefulEngine extends RuleEngine {
    revision = 'r1';
    private info: BundleInfo = this.mk();
    private mk(): BundleInfo {
      return {
        revision: this.revision,
        entrypoint: 'pgward/decision',
        source: 's',
        loaded_at: '',
        opa_version: null,
      };
    }
    swap(): void {
      this.revision = 'r2';
      this.info = this.mk();
    }
    override evaluate(input: InputDocument): Decision {
      const d = super.evaluate(input);
      if (input.message.type === 'StartupMessage') return d;
      const deny = input.connection.transaction_status === 'T' || this.revision === 'r2';
      return deny ? { ...d, allow: false, reasons: ['stateful'] } : d;
    }
    override bundle(): BundleInfo {
      return this.info;
    }
  }

  it('a transaction status change between repeats is seen by the policy', () => {
    const engine = new StatefulEngine();
    const h = new Harness({ engine });
    h.login();
    for (let i = 0; i < 3; i++) row(h, Q('SELECT 1'));
    h.client(Q('BEGIN'));
    h.server(pg.complete('BEGIN'), pg.ready('T'));
    h.client(Q('SELECT 1'));
    expect(nonStartup(h).at(-1)!.decision.allow).toBe(false);
  });

  it('a bundle swap between repeats: the repeat is decided by the new bundle', () => {
    const engine = new StatefulEngine();
    const h = new Harness({ engine });
    h.login();
    for (let i = 0; i < 3; i++) row(h, Q('SELECT 1'));
    engine.swap();
    h.client(Q('SELECT 1'));
    expect(nonStartup(h).at(-1)!.decision.allow).toBe(false);
  });

  it('every repeated message has its own decision event, id and message', () => {
    const h = new Harness();
    h.login();
    for (let i = 0; i < 4; i++) row(h, Q('SELECT 1'));
    const ds = nonStartup(h);
    expect(ds).toHaveLength(4);
    expect(new Set(ds.map((d) => d.decision.id)).size).toBe(4);
    expect(new Set(ds.map((d) => d.message)).size).toBe(4);
    expect(ds.every((d) => d.original?.sql === 'SELECT 1')).toBe(true);
  });
});
