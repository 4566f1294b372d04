/**
 * A second-level cache keyed by a text's shape (see shape.ts): texts that differ only in the
 * values of their constants share a classification, with each statement's own `sql` sliced from
 * the text at hand. Only classifications that cannot depend on a constant's value are shared:
 * no settings, COPY, transaction control, PREPARE/EXECUTE, utility statement, role change or SQL
 * run from a string constant (ts_stat('…')) — so relations, functions, WHERE, read-only and DDL
 * facts are the same for every such text.
 */
import { ClassificationCache } from './cache';
import { classifyWithSpans } from './classify';
import { deepFreeze, shareTextFree } from './frozen';
import { shapeKey } from './shape';
import type { Classification, StatementInfo } from './types';

interface Template {
  classification: Classification;
  spans: Array<[number, number]>;
  /** Used since eviction last passed it (a second chance: hits do not reorder the map). */
  used: boolean;
}

/** Whether no fact of this classification can change with the value of a constant. */
export function shapeIndependent(c: Classification): boolean {
  if (c.parse_error !== null || c.statements.length === 0) return false;
  return c.statements.every(
    (s) =>
      s.settings.length === 0 &&
      s.copy === null &&
      s.transaction === null &&
      s.prepared === null &&
      s.utility === null &&
      !s.role_change &&
      s.sql_text_calls === undefined,
  );
}

/**
 * `s` with another `sql`, every other field shared: a literal, because spreading a frozen object
 * takes V8's slow clone path on every query. The key order is analyze.ts's. Every field of
 * StatementInfo must be here (shape.test.ts checks it against a list the compiler keeps complete).
 */
export function withSql(s: StatementInfo, sql: string): StatementInfo {
  const o: StatementInfo = {
    command: s.command,
    node: s.node,
    sql,
    fingerprint: s.fingerprint,
    relations: s.relations,
    functions: s.functions,
    has_where: s.has_where,
    read_only: s.read_only,
    ddl: s.ddl,
    role_change: s.role_change,
    utility: s.utility,
    copy: s.copy,
    transaction: s.transaction,
    prepared: s.prepared,
    settings: s.settings,
  };
  if (s.sql_text_calls !== undefined) o.sql_text_calls = s.sql_text_calls;
  if (s.columns !== undefined) o.columns = s.columns;
  return o;
}

export class ShapeCache {
  private readonly templates = new Map<string, Template>();
  hits = 0;

  constructor(
    readonly maxEntries: number,
    readonly maxSqlLength = 16 * 1024,
  ) {}

  get size(): number {
    return this.templates.size;
  }

  /** The shape key of `sql`, or null when it has none (then classify the text itself). */
  key(sql: string): string | null {
    return this.maxEntries > 0 && sql.length <= this.maxSqlLength ? shapeKey(sql) : null;
  }

  /** The classification of `sql` from a template of the same shape, or undefined. */
  get(key: string, sql: string): Classification | undefined {
    const t = this.templates.get(key);
    if (t === undefined) return undefined;
    t.used = true;
    this.hits++;
    const from = t.classification.statements;
    const statements: StatementInfo[] = new Array<StatementInfo>(from.length);
    for (let i = 0; i < from.length; i++) {
      const [start, end] = t.spans[i] as [number, number];
      statements[i] = withSql(from[i] as StatementInfo, sql.slice(start, end < 0 ? undefined : end).trim());
    }
    shareTextFree(statements, t.classification.statements);
    return { statements, parse_error: null };
  }

  /** Classifies `sql` in full and keeps it as the template of its shape when it qualifies. */
  classify(key: string | null, sql: string): Classification {
    const spans: Array<[number, number]> = [];
    const c = classifyWithSpans(sql, spans);
    if (key !== null && spans.length === c.statements.length && shapeIndependent(c)) {
      // Room first, so that the new template is never the one evicted.
      if (!this.templates.has(key) && this.templates.size >= this.maxEntries) this.evictOne();
      this.templates.set(key, { classification: deepFreeze(c), spans, used: false });
    }
    return c;
  }

  /**
   * Drops the oldest template not used since eviction last passed it; a used one goes to the
   * back, unmarked (CLOCK: what is used survives, and a hit costs no reordering).
   */
  private evictOne(): void {
    for (let n = this.templates.size; n >= 0; n--) {
      const [key, t] = this.templates.entries().next().value as [string, Template];
      this.templates.delete(key);
      if (!t.used || n === 0) return;
      t.used = false;
      this.templates.set(key, t);
    }
  }
}

export interface ClassifierHooks {
  /** Answered from a cache (the exact text or its shape). */
  hit(): void;
  /** Classified in full, in `seconds`. */
  miss(seconds: number): void;
}

/**
 * The gateway's classify: the exact text (ClassificationCache), then its shape (ShapeCache: texts
 * that differ only in constants, for the classifications that cannot depend on a constant's
 * value), then a full classification kept at both levels. initSqlParser() must have completed.
 */
export function sessionClassifier(entries: number, hooks?: ClassifierHooks): (sql: string) => Classification {
  const cache = new ClassificationCache({ maxEntries: entries });
  const shapes = new ShapeCache(entries);
  return (sql) => {
    const hit = cache.get(sql);
    if (hit) {
      hooks?.hit();
      return hit;
    }
    const key = shapes.key(sql);
    const shaped = key !== null ? shapes.get(key, sql) : undefined;
    if (shaped) {
      hooks?.hit();
      return shaped;
    }
    const t0 = performance.now();
    const c = shapes.classify(key, sql);
    hooks?.miss((performance.now() - t0) / 1e3);
    return cache.set(sql, c);
  };
}
