/**
 * The decision cache's lean path: a decision found by the values the bundle's input paths reach in
 * the full input document, one Map lookup per value, without cutting the document
 * (input-project.ts) nor building a key string (input-json.ts).
 *
 * The paths (a trie without `"*"` and without `time`) are walked in a fixed order over the full
 * document. Each step gives one element of the key tuple:
 *
 * - a leaf (a path ends): the value there — a primitive, `undefined` (absent), or an object that is
 *   deeply frozen (then its identity stands for its content, which cannot change); any other object
 *   makes the document unkeyable here (the caller then takes the string key);
 * - an inner node: OBJECT when the value is a plain object (the walk goes on into it), ARRAY for an
 *   array (cut to `[]` there: a named key of an array is undefined in Rego), else the value itself
 *   (null, undefined, a primitive: the walk does not go below it).
 *
 * The walk is deterministic given the elements before, so equal tuples mean equal cut documents
 * (input-project.ts `evaluatedInput`): the same keys holding the same values. Every value a path
 * reaches is part of the tuple, read from the document at the time of the lookup: a connection
 * whose user or transaction status changed, another statement list, another message type, all
 * give other tuples.
 *
 * Bounded like GenerationalCache (generational-cache.ts): two generations of at most half the entries.
 */
import { ANY_KEY } from './input-paths';
import { deeplyFrozen, reaches, type PathNode } from './input-project';
import { textFreeTemplate } from '../sql/frozen';
import type { StatementInfo } from '../sql/types';
import type { InputDocument } from './types';

/** One key of an inner node of the walk (keys in a fixed order) and what is under it. */
interface Step {
  key: string;
  /** null: a leaf (the path ends there, or a `"*"` below makes the value a whole). */
  next: Step[] | null;
  /**
   * A leaf whose elements are read without their SQL texts: a shape-cache hit's statement list
   * (textFreeTemplate) stands for its frozen template, which differs from it only in those texts.
   */
  textBlind: boolean;
}

const OBJECT = Object.freeze({ marker: 'object' });
const ARRAY = Object.freeze({ marker: 'array' });
const MAX_TEXT_KEY = 4096;
/** A document this cache cannot key (an unfrozen object at a leaf). */
const UNKEYABLE = Symbol('unkeyable');

/**
 * The walk for `node`, or null when the lean path cannot serve it (the whole document, `"*"` at
 * the top, `time`). Below a node with `"*"` the value is taken whole, as a leaf: a deeply frozen
 * value (a classification's statement list) by identity, which is how the string key sees it too.
 */
export function leafPlan(node: PathNode): Step[] | null {
  if (node === true || node.has('time')) return null;
  return steps(node);
}

/** null when `node` has `"*"`: the caller then takes its value whole, as a leaf. */
function steps(node: ReadonlyMap<string, PathNode>): Step[] | null {
  const out: Step[] = [];
  for (const key of [...node.keys()].sort()) {
    if (key === ANY_KEY) return null;
    const child = node.get(key)!;
    const next = child === true ? null : steps(child);
    out.push({ key, next, textBlind: child !== true && next === null && !readsStatementText(child) });
  }
  return out;
}

/** Whether the elements of a list read through `node` can show a statement's SQL text. */
function readsStatementText(node: PathNode): boolean {
  return reaches(node, [ANY_KEY, 'sql']) || reaches(node, [ANY_KEY, 'prepared', 'inner', 'sql']);
}

/** Appends the tuple of `v` walked by `plan` to `out`; false when it is unkeyable. */
function walk(v: Record<string, unknown>, plan: Step[], out: unknown[]): boolean {
  for (const s of plan) {
    const x = v[s.key];
    if (s.next === null) {
      if (x !== null && typeof x === 'object' && !deeplyFrozen(x)) {
        const template = s.textBlind && Array.isArray(x) ? textFreeTemplate(x as StatementInfo[]) : undefined;
        if (template === undefined || !deeplyFrozen(template)) return false;
        out.push(template);
        continue;
      }
      // A long text (a big SQL text) is not kept as a key: the string path refuses it too.
      if (typeof x === 'string' && x.length > MAX_TEXT_KEY) return false;
      out.push(x);
    } else if (x === null || typeof x !== 'object') {
      out.push(x);
    } else if (Array.isArray(x)) {
      out.push(ARRAY);
    } else {
      out.push(OBJECT);
      if (!walk(x as Record<string, unknown>, s.next, out)) return false;
    }
  }
  return true;
}

type Level = Map<unknown, unknown>;

/** The terminal of a tuple (a tuple is never a prefix of another, see the module comment). */
class Entry<V> {
  constructor(readonly value: V) {}
}

export class LeafCache<V> {
  private young: Level = new Map();
  private old: Level = new Map();
  private youngSize = 0;
  private readonly half: number;
  /** The tuple of the last lookup (reused: one lookup at a time). */
  private readonly tuple: unknown[] = [];
  private keyed = false;

  constructor(
    private readonly plan: Step[],
    maxEntries: number,
  ) {
    this.half = Math.max(1, Math.floor(maxEntries / 2));
  }

  /**
   * The decision cached for `input`; undefined on a miss. After a miss, `keyable` says whether
   * `set` may store the decision for this same input.
   */
  get(input: InputDocument): V | undefined | typeof UNKEYABLE {
    const t = this.tuple;
    t.length = 0;
    t.push(OBJECT);
    this.keyed = walk(input as unknown as Record<string, unknown>, this.plan, t);
    if (!this.keyed) return UNKEYABLE;
    const y = find<V>(this.young, t);
    if (y !== undefined) return y.value;
    const o = find<V>(this.old, t);
    if (o === undefined) return undefined;
    this.insert(o);
    return o.value;
  }

  /** Stores `value` for the input of the last `get` (a miss). */
  set(value: V): void {
    if (this.keyed) this.insert(new Entry(value));
  }

  get size(): number {
    return this.youngSize;
  }

  private insert(e: Entry<V>): void {
    if (this.youngSize >= this.half) {
      this.old = this.young;
      this.young = new Map();
      this.youngSize = 0;
    }
    const t = this.tuple;
    let level = this.young;
    const last = t.length - 1;
    for (let i = 0; i < last; i++) {
      let next = level.get(t[i]) as Level | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(t[i], next);
      }
      level = next;
    }
    if (!level.has(t[last])) this.youngSize++;
    level.set(t[last], e);
  }
}

function find<V>(root: Level, t: readonly unknown[]): Entry<V> | undefined {
  let level: unknown = root;
  for (let i = 0; i < t.length; i++) {
    level = (level as Level).get(t[i]);
    if (level === undefined) return undefined;
  }
  return level as Entry<V>;
}

export { UNKEYABLE };
