/**
 * The input paths a Rego policy can read, derived from its AST (`opa parse --format json`), for
 * the bundle manifest's `metadata.pgward.input_paths` (scripts/build-policy.sh, `pgward build`).
 *
 * Every reference rooted at `input` contributes its path: its static keys (string terms) as they
 * are, any other key (a variable, a number, a call, another reference: `input.message[x]`,
 * `input.statements[0]`, `input.a[input.b]`) as `"*"`, which stands for every key or element at
 * that level. A reference reads everything below its path: `input.message.sql` keeps the whole of
 * `message.sql`, `input.message` (passed to a function, to `walk`, to `object.get`, `json.filter`,
 * compared, counted, iterated with `some … in`, imported with `import input.message`) keeps the
 * whole of `message`. A bare `input` (a function argument, `walk(input, …)`, `object.get(input, …)`,
 * `with input as …`, `import input`) is the empty path: the whole document. The analysis is
 * syntactic over every term of every module, so it is conservative by construction: whatever the
 * policy can observe of the input is reached through one of these references. METADATA
 * annotations (`schemas: - input: schema.input`, for type checking only) and comments are never
 * evaluated, so they are not read.
 *
 * Paths are lists of keys; `[]` is the whole input. The result is minimal (no path below another)
 * and sorted. No imports: the build script loads this file without the compiled gateway.
 */

/** One input path: object keys, `"*"` for any key or array element. `[]`: the whole input. */
export type InputPath = readonly string[];

export const ANY_KEY = '*';

interface Term {
  type?: unknown;
  value?: unknown;
}

function isInputVar(t: unknown): boolean {
  return typeof t === 'object' && t !== null && (t as Term).type === 'var' && (t as Term).value === 'input';
}

/** Collects the input paths of every reference rooted at `input` found anywhere in `node`. */
function visit(node: unknown, out: string[][]): void {
  if (Array.isArray(node)) {
    for (const x of node) visit(x, out);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const t = node as Term;
  if (t.type === 'ref' && Array.isArray(t.value) && isInputVar(t.value[0])) {
    const path: string[] = [];
    for (const key of t.value.slice(1) as Term[]) {
      if (typeof key === 'object' && key !== null && key.type === 'string' && typeof key.value === 'string') {
        path.push(key.value);
      } else {
        path.push(ANY_KEY);
        visit(key, out);
      }
    }
    out.push(path);
    return;
  }
  if (isInputVar(t)) {
    out.push([]);
    return;
  }
  for (const [k, v] of Object.entries(node)) if (!NOT_EVALUATED.has(k)) visit(v, out);
}

/**
 * Parts of a module that are never evaluated: METADATA annotations (their `schemas` name input
 * paths, `- input: schema.input` the whole input, only for type checking) and comments.
 */
const NOT_EVALUATED = new Set(['annotations', 'comments']);

function compare(a: InputPath, b: InputPath): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i]! < b[i]!) return -1;
    if (a[i]! > b[i]!) return 1;
  }
  return a.length - b.length;
}

/** Whether `prefix` covers `path`: equal keys, or `"*"` in `prefix`, up to `prefix`'s length. */
export function covers(prefix: InputPath, path: InputPath): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== ANY_KEY && prefix[i] !== path[i]) return false;
  return true;
}

/** Sorted, without duplicates and without a path another one covers. */
export function minimalPaths(paths: readonly InputPath[]): string[][] {
  const sorted = [...paths].sort(compare);
  const kept: string[][] = [];
  for (const p of sorted) {
    if (kept.some((k) => covers(k, p))) continue;
    // A later, longer path never covers an earlier one except through "*": drop those it covers.
    for (let i = kept.length - 1; i >= 0; i--) if (covers(p, kept[i]!)) kept.splice(i, 1);
    kept.push([...p]);
  }
  return kept;
}

/**
 * The input paths the modules (each the JSON of `opa parse --format json`) can read. Throws when
 * a module is not an object with a `package`: a parse output that is not what this reads must
 * not become a narrower input.
 */
export function inputPathsOfModules(modules: readonly unknown[]): string[][] {
  const out: string[][] = [];
  for (const m of modules) {
    if (typeof m !== 'object' || m === null || !('package' in m)) {
      throw new Error('not a Rego module AST (opa parse --format json)');
    }
    visit(m, out);
  }
  return minimalPaths(out);
}

/**
 * `metadata.pgward.input_paths` as read from a manifest: a list of lists of strings, or null
 * when absent. Throws on anything else.
 */
export function parseInputPaths(value: unknown): string[][] | null {
  if (value === undefined) return null;
  if (
    !Array.isArray(value) ||
    !value.every((p) => Array.isArray(p) && p.every((k) => typeof k === 'string'))
  ) {
    throw new Error('metadata.pgward.input_paths is not a list of lists of strings');
  }
  return minimalPaths(value as string[][]);
}
