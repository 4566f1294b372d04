/**
 * The input document a bundle evaluates: the full document (policy/input.ts) cut down to the
 * paths the bundle's policy can read (metadata.pgward.input_paths, policy/input-paths.ts), plus
 * `time` when a path reaches it. The decision cache keys on this document, so a field no rule
 * reads never splits the cache.
 *
 * Cutting is exact: every value under a kept path is the full document's value; a key outside
 * every path is absent; an array under a path with `"*"` keeps all its elements, each cut by the
 * rest of the path; an array under a path with only named keys becomes `[]` (a named key of an
 * array is undefined in Rego). The result is a sub-document of a valid input (policy-input.md):
 * every field present is as documented, required fields the policy never reads are absent.
 *
 * Cheap for what repeats: the cut of a deeply frozen list (a classification's statements, shared
 * and frozen, sql/frozen.ts) is kept per list, and the cut of a connection per connection object
 * while the fields it keeps hold the same values, so input-json.ts keeps their JSON texts too.
 */
import { ANY_KEY, type InputPath } from './input-paths';
import type { InputOptions } from './input';
import type { BundleInfo, ConnectionInfo, InputDocument } from './types';

/** A path trie: `true` keeps the whole value; a map keeps the named keys (`"*"`: every key). */
export type PathNode = true | ReadonlyMap<string, PathNode>;

type MutableNode = true | Map<string, MutableNode>;

function insert(node: Map<string, MutableNode>, path: InputPath, i: number): void {
  const key = path[i]!;
  const last = i === path.length - 1;
  const child = node.get(key);
  if (last || child === true) {
    node.set(key, true);
    return;
  }
  const next = child ?? new Map<string, MutableNode>();
  node.set(key, next);
  insert(next, path, i + 1);
}

function union(a: MutableNode, b: MutableNode): MutableNode {
  if (a === true || b === true) return true;
  const out = new Map(a);
  for (const [k, v] of b) out.set(k, out.has(k) ? union(out.get(k)!, v) : v);
  return out;
}

/** Folds each `"*"` child into its named siblings, so that a lookup is `get(k) ?? get("*")`. */
function spread(node: MutableNode): MutableNode {
  if (node === true) return true;
  const any = node.get(ANY_KEY);
  const out = new Map<string, MutableNode>();
  for (const [k, v] of node) out.set(k, spread(any !== undefined && k !== ANY_KEY ? union(v, any) : v));
  return out;
}

/** The trie of `paths`; `true` when one of them is the whole input. */
export function pathTrie(paths: readonly InputPath[]): PathNode {
  const root = new Map<string, MutableNode>();
  for (const p of paths) {
    if (p.length === 0) return true;
    insert(root, p, 0);
  }
  return spread(root);
}

/**
 * Whether a policy reading `node` can read anything at or below `path` (`"*"` in `path`: some
 * key, any one of them).
 */
export function reaches(node: PathNode, path: InputPath, from = 0): boolean {
  if (node === true || from === path.length) return true;
  const key = path[from]!;
  if (key === ANY_KEY) {
    for (const child of node.values()) if (reaches(child, path, from + 1)) return true;
    return false;
  }
  const next = node.get(key) ?? node.get(ANY_KEY);
  return next !== undefined && reaches(next, path, from + 1);
}

/** Whether a policy reading `node` can read a Bind parameter's or FunctionCall argument's value. */
export function readsBindValues(node: PathNode): boolean {
  return (
    reaches(node, ['message', 'parameters', ANY_KEY, 'value']) ||
    reaches(node, ['message', 'arguments', ANY_KEY, 'value'])
  );
}

/**
 * Whether a policy reading `node` can tell apart two Query texts of one shape (a shape-cache
 * template's statements: alike but for their `sql`, and none with `prepared`: see
 * sql/shape-cache.ts shapeIndependent): it reads `message.sql`, `message.truncated` (how long
 * the text is) or a statement's `sql`.
 */
export function readsQueryText(node: PathNode): boolean {
  return (
    reaches(node, ['message', 'sql']) ||
    reaches(node, ['message', 'truncated']) ||
    reaches(node, ['statements', ANY_KEY, 'sql'])
  );
}

/**
 * The builder options for a bundle: Bind values decoded only when one of its input paths reaches
 * them, and whether it reads SQL text. The live session (frame-judge.ts), replay and explain all
 * take them from here.
 */
export function bundleInputOptions(base: InputOptions, bundle: BundleInfo | null): InputOptions {
  const paths = bundle?.input_paths;
  if (paths === undefined || paths === null) return base;
  const trie = pathTrie(paths);
  return { ...base, bindParameterValues: readsBindValues(trie), sqlTextRead: readsQueryText(trie) };
}

const listCuts = new WeakMap<
  ReadonlyMap<string, PathNode>,
  WeakMap<readonly unknown[], readonly unknown[]>
>();

/**
 * `value` cut to `node`. Values kept whole are the same objects; with `freeze`, the objects made
 * here are frozen (never the ones kept whole, which belong to the caller).
 */
export function cut(value: unknown, node: PathNode, freeze = false): unknown {
  if (node === true || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return cutList(value, node, freeze);
  const out: Record<string, unknown> = {};
  const rec = value as Record<string, unknown>;
  for (const k in rec) {
    const child = node.get(k) ?? node.get(ANY_KEY);
    if (child !== undefined && rec[k] !== undefined) out[k] = cut(rec[k], child, freeze);
  }
  return freeze ? Object.freeze(out) : out;
}

function cutList(
  list: readonly unknown[],
  node: ReadonlyMap<string, PathNode>,
  freeze: boolean,
): readonly unknown[] {
  const child = node.get(ANY_KEY);
  if (child === undefined) return freeze ? EMPTY : [];
  if (!deeplyFrozen(list)) {
    const made = list.map((x) => cut(x, child, freeze));
    return freeze ? Object.freeze(made) : made;
  }
  let byList = listCuts.get(node);
  if (byList === undefined) {
    byList = new WeakMap();
    listCuts.set(node, byList);
  }
  let kept = byList.get(list);
  if (kept === undefined) {
    kept = Object.freeze(list.map((x) => cut(x, child, true)));
    byList.set(list, kept);
  }
  return kept;
}

/**
 * Frozen with everything inside it; an object or list once found so is remembered (frozen cannot
 * thaw). leaf-cache.ts keys such values by identity.
 */
const frozenObjects = new WeakSet<object>();
export function deeplyFrozen(v: object): boolean {
  if (frozenObjects.has(v)) return true;
  if (!frozenAll(v)) return false;
  frozenObjects.add(v);
  return true;
}
function frozenAll(v: object): boolean {
  if (!Object.isFrozen(v)) return false;
  for (const x of Object.values(v)) if (x !== null && typeof x === 'object' && !frozenAll(x)) return false;
  return true;
}

const EMPTY: unknown[] = Object.freeze([]) as unknown as unknown[];

interface ConnectionCut {
  node: PathNode;
  values: unknown[];
  cut: ConnectionInfo;
}

const connectionCuts = new WeakMap<ConnectionInfo, ConnectionCut>();

/**
 * The connection cut to `node`, the same object while the fields `node` keeps hold the same
 * values (identity) and are primitives or frozen objects, which a session's connection fields are
 * once set.
 */
function cutConnection(conn: ConnectionInfo, node: PathNode): ConnectionInfo {
  if (node === true) return conn;
  const rec = conn as unknown as Record<string, unknown>;
  const values: unknown[] = [];
  let keepable = true;
  for (const k in rec) {
    if (!node.has(k) && !node.has(ANY_KEY)) continue;
    const v = rec[k];
    if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) keepable = false;
    values.push(v);
  }
  const kept = connectionCuts.get(conn);
  if (kept !== undefined && kept.node === node && sameValues(kept.values, values)) return kept.cut;
  const made = cut(conn, node, true) as ConnectionInfo;
  if (keepable) connectionCuts.set(conn, { node, values, cut: made });
  return made;
}

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `input.time`: the decision time, UTC (policy-input.md). */
export interface DecisionTime {
  /** RFC 3339, UTC, millisecond precision: `2026-12-05T02:30:00.000Z`. */
  rfc3339: string;
  /** Nanoseconds since the Unix epoch (millisecond precision), as `time.now_ns()` would give. */
  ns: number;
  /** 0 (Sunday) … 6 (Saturday), UTC. */
  weekday: number;
  /** 0 … 23, UTC. */
  hour: number;
  /** 0 … 59, UTC. */
  minute: number;
}

export function decisionTime(ms: number): DecisionTime {
  const d = new Date(ms);
  return {
    rfc3339: d.toISOString(),
    ns: ms * 1e6,
    weekday: d.getUTCDay(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
  };
}

/** Whether `node` keeps every field of `rec` whole and adds no `time`: then the cut is `rec`. */
function keepsWhole(rec: Record<string, unknown>, node: ReadonlyMap<string, PathNode>): boolean {
  if (node.has('time') || node.has(ANY_KEY)) return false;
  for (const k in rec) if (rec[k] !== undefined && node.get(k) !== true) return false;
  return true;
}

/**
 * The document a bundle reading `node` evaluates for `input` (the full document), with `time`
 * from `now()` (milliseconds since the epoch) when the bundle can read it and `input` has none
 * (`explain --input` may give a full document with its own).
 */
export function evaluatedInput(input: InputDocument, node: PathNode, now: () => number): InputDocument {
  if (node === true) return input.time !== undefined ? input : { ...input, time: decisionTime(now()) };
  const rec = input as unknown as Record<string, unknown>;
  if (keepsWhole(rec, node)) return input;
  const out: Record<string, unknown> = {};
  for (const k in rec) {
    const child = node.get(k) ?? node.get(ANY_KEY);
    const v = rec[k];
    if (child === undefined || v === undefined) continue;
    out[k] = k === 'connection' ? cutConnection(v as ConnectionInfo, child) : cut(v, child);
  }
  const time = node.get('time') ?? node.get(ANY_KEY);
  if (time !== undefined && !('time' in rec)) out['time'] = cut(decisionTime(now()), time);
  return out as unknown as InputDocument;
}
