/**
 * Bounded LRU of classifications keyed by the exact SQL text. Cached classifications are deeply
 * frozen: callers share them and must copy before changing anything.
 */
import { classify } from './classify';
import { deepFreeze } from './frozen';
import type { Classification } from './types';

export interface ClassificationCacheOptions {
  /** Most entries kept; the least recently used is evicted beyond it. 0 disables caching. */
  maxEntries: number;
  /** Longer SQL texts (in UTF-16 code units) are classified every time, never kept. */
  maxSqlLength?: number;
}

export interface ClassificationCacheStats {
  entries: number;
  maxEntries: number;
  hits: number;
  misses: number;
  evictions: number;
  /** Lookups of texts longer than maxSqlLength (not cached, not counted as misses). */
  uncacheable: number;
}

export const DEFAULT_MAX_SQL_LENGTH = 16 * 1024;

export class ClassificationCache {
  readonly maxEntries: number;
  readonly maxSqlLength: number;
  private readonly entries = new Map<string, Classification>();
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private uncacheable = 0;

  constructor(options: ClassificationCacheOptions) {
    const { maxEntries, maxSqlLength = DEFAULT_MAX_SQL_LENGTH } = options;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0)
      throw new RangeError('maxEntries must be an integer >= 0');
    if (!Number.isSafeInteger(maxSqlLength) || maxSqlLength < 0) {
      throw new RangeError('maxSqlLength must be an integer >= 0');
    }
    this.maxEntries = maxEntries;
    this.maxSqlLength = maxSqlLength;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Whether a text of this length is ever cached. */
  accepts(sql: string): boolean {
    return this.maxEntries > 0 && sql.length <= this.maxSqlLength;
  }

  /** Looks up and marks as most recently used; counts a hit, a miss, or an uncacheable lookup. */
  get(sql: string): Classification | undefined {
    if (!this.accepts(sql)) {
      this.uncacheable++;
      return undefined;
    }
    const found = this.entries.get(sql);
    if (found === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(sql);
    this.entries.set(sql, found);
    return found;
  }

  /** Stores (frozen) and returns the classification; texts that are too long are not stored. */
  set(sql: string, classification: Classification): Classification {
    const frozen = deepFreeze(classification);
    if (!this.accepts(sql)) return frozen;
    this.entries.delete(sql);
    this.entries.set(sql, frozen);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
      this.evictions++;
    }
    return frozen;
  }

  has(sql: string): boolean {
    return this.entries.has(sql);
  }

  clear(): void {
    this.entries.clear();
  }

  stats(): ClassificationCacheStats {
    return {
      entries: this.entries.size,
      maxEntries: this.maxEntries,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      uncacheable: this.uncacheable,
    };
  }
}

export interface Classifier {
  classify(sql: string): Classification;
  stats(): ClassificationCacheStats;
}

/** A classify() with its own LRU cache. initSqlParser() must have completed before classify(). */
export function createClassifier(options: ClassificationCacheOptions): Classifier {
  const cache = new ClassificationCache(options);
  return {
    classify(sql: string): Classification {
      return cache.get(sql) ?? cache.set(sql, classify(sql));
    },
    stats: () => cache.stats(),
  };
}
