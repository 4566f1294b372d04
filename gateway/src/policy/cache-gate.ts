/**
 * Whether the decision cache's string key (input-json.ts `inputKey`) earns its cost, per kind of
 * document (the message type). Building the key of a document costs about as much as its JSON
 * text, and a lookup hashes it; for documents that never repeat — a policy reading Bind values
 * that are all distinct, say — that is pure loss on every evaluation, about a third of it.
 *
 * So each kind is watched over windows of `window` keyed lookups: when fewer than one in
 * `minHitRatio` hit, the next `rest` windows' worth of documents of that kind are evaluated
 * without a key (neither looked up nor stored), then a new window is watched. A kind whose
 * documents repeat keeps its cache; a kind that starts repeating gets it back within one rest.
 * Only the cost changes: a document is judged the same with or without the cache.
 */
export interface KindStats {
  lookups: number;
  hits: number;
  /** Documents still to evaluate without a key. */
  skip: number;
}

/** Beyond this many kinds, new ones are always keyed (message types are a handful). */
const MAX_KINDS = 64;

export class CacheGate {
  private readonly kinds = new Map<string, KindStats>();

  constructor(
    private readonly window = 1024,
    private readonly minHitRatio = 32,
    private readonly rest = 15,
  ) {}

  /** The stats to record the lookup in, or null: evaluate this document of `kind` without a key. */
  enter(kind: string): KindStats | null {
    let k = this.kinds.get(kind);
    if (k === undefined) {
      k = { lookups: 0, hits: 0, skip: 0 };
      if (this.kinds.size < MAX_KINDS) this.kinds.set(kind, k);
    }
    if (k.skip > 0) {
      k.skip--;
      return null;
    }
    return k;
  }

  /** Records a keyed lookup of `k` (from enter). */
  leave(k: KindStats, hit: boolean): void {
    k.lookups++;
    if (hit) k.hits++;
    if (k.lookups >= this.window) {
      if (k.hits * this.minHitRatio < k.lookups) k.skip = this.window * this.rest;
      k.lookups = 0;
      k.hits = 0;
    }
  }

  /** Whether documents of `kind` are currently evaluated without a key. */
  resting(kind: string): boolean {
    return (this.kinds.get(kind)?.skip ?? 0) > 0;
  }
}
