/**
 * The input paths a Rego policy can read, derived from its AST (`opa parse --format json`), for
 * the bundle manifest's `metadata.pgward.input_paths` (scripts/build-policy.sh, `pgward build`).
 *
 * Every reference rooted at `input` contributes its path: its static keys (string terms) as they
 * are, any other key (a variable, a number, a call, another reference: `input.message[x]`,
 * `input.statements[0]`, `input.a[input.b]`) as `"*"`, which stands for every key or element at
 * that level. Values are followed (data flow, per rule body and per function): a variable bound
 * to an input value (`some s in input.statements`, `every`, `s := input.x[_]`, `input.x[i] = s`,
 * unification either way, through other variables) reads below it what its references read
 * (`s.command`: `statements.*.command`); a user function is summarised per argument (the paths
 * it reads of each, calls within it substituted), so a call adds them below the argument's path;
 * a partial set rule whose elements are input values is followed where it is iterated. Whatever
 * is not followed reads whole: a value compared, put in a collection, passed to a builtin, or
 * returned by a function or complete rule (a cut could make two conflicting values equal);
 * `with input…` and a bare `input` read the whole document. What a rule can observe of a value
 * kept only in part: its presence (a path through it keeps it), its keys or elements (iterated
 * or counted: a `"*"` below it), its type (a cut object or array keeps its type, a scalar is kept
 * whole); a field whose presence matters and that no other path keeps is kept whole. A rule's
 * set is counted, compared or iterated in an array comprehension whole: the cut could make two
 * of its elements one. METADATA annotations (`schemas: - input: schema.input`, for type checking
 * only) and comments are never evaluated, so they are not read.
 *
 * Paths are lists of keys; `[]` is the whole input. The result is minimal (no path below another)
 * and sorted. No imports: the build script loads this file without the compiled gateway.
 */

/** One input path: object keys, `"*"` for any key or array element. `[]`: the whole input. */
export type InputPath = readonly string[];

export const ANY_KEY = '*';

/** A term, expression or rule of the AST, as far as this reads it. */
interface Node {
  type?: unknown;
  value?: unknown;
  [k: string]: unknown;
}

interface ModuleAst {
  package: { path: Node[] };
  imports?: Array<{ path: Node; alias?: string }>;
  rules?: Node[];
}

/** Where a value comes from: the input (`root` "input") or a function's argument (`#0`, `#1`…). */
interface Origin {
  root: string;
  keys: string[];
}

/**
 * What a value is, as far as the input goes: `exact` — it is the value at one of these origins
 * (a lookup into it reads below them); `elems` — it is a set whose elements are (a partial set
 * rule's value). A value derived any other way has read whatever it came from whole.
 */
interface Val {
  exact: Origin[];
  elems: Origin[];
}

const NONE: Val = { exact: [], elems: [] };
const INPUT = 'input';

/** `whole`: the value at the origin is read whole; `exists`: only whether it is defined. */
interface Need {
  whole: boolean;
  at: Origin;
}

interface Ctx {
  mod: ModInfo;
  needs: Need[];
  /** Inside an array comprehension's body: an iteration's multiplicity is observable. */
  arrayComp: boolean;
}

interface ModInfo {
  pkg: string[];
  imports: Map<string, Origin>;
}

interface RuleDef {
  rule: Node;
  mod: ModInfo;
  /** The head's reference beyond the static part (`p[k] := v`: `[k]`). */
  dynamic: Node[];
}

interface FnSummary {
  needs: Need[];
  /** Every argument read whole (a function met again while summarised: not valid Rego). */
  allWhole: boolean;
}

/** Scope of one body: variables and the expression that binds each (`=` binds or compares). */
interface Scope {
  env: Map<string, Val>;
  binders: Map<string, number>;
  expr: number;
}

const isObj = (x: unknown): x is Node => typeof x === 'object' && x !== null && !Array.isArray(x);
const isVar = (t: unknown, name?: string): t is Node & { type: 'var'; value: string } =>
  isObj(t) && t.type === 'var' && typeof t.value === 'string' && (name === undefined || t.value === name);
const isStr = (t: unknown): t is Node & { value: string } =>
  isObj(t) && t.type === 'string' && typeof t.value === 'string';
const nodes = (x: unknown): Node[] => (Array.isArray(x) ? (x as unknown[]).filter(isObj) : []);

function unionVal(a: Val, b: Val): Val {
  return { exact: [...a.exact, ...b.exact], elems: [...a.elems, ...b.elems] };
}

const originKey = (o: Origin): string => JSON.stringify([o.root, ...o.keys]);

function valKey(v: Val): string {
  return (
    [...new Set(v.exact.map(originKey))].sort().join() +
    '|' +
    [...new Set(v.elems.map(originKey))].sort().join()
  );
}

/** Type-testing builtins: they read whether the value is defined and its type, which a cut keeps. */
const TYPE_ONLY = new Set([
  'is_null',
  'is_string',
  'is_number',
  'is_boolean',
  'is_array',
  'is_object',
  'is_set',
  'type_name',
]);

/** Largest number of passes over one body (bindings can be used before their expression). */
const MAX_PASSES = 16;

/**
 * The analysis of a set of modules: each rule body is walked with the variables it binds to
 * input values; each function is summarised per argument; partial set rules whose elements are
 * input values are followed. Anything not understood reads its operands whole.
 */
class Analysis {
  private readonly groups = new Map<string, { path: string[]; defs: RuleDef[]; fn: boolean }>();
  private readonly pkgNames = new Map<string, Set<string>>();
  private readonly ruleVals = new Map<string, Val | 'busy'>();
  private readonly fnSummaries = new Map<string, FnSummary | 'busy'>();
  private readonly global: Need[] = [];

  constructor(modules: readonly ModuleAst[]) {
    for (const m of modules) {
      const pkg = m.package.path.slice(1).map((t) => (isStr(t) ? t.value : ANY_KEY));
      const imports = new Map<string, Origin>();
      for (const imp of m.imports ?? []) {
        const ref = imp.path.type === 'ref' ? nodes(imp.path.value) : [imp.path];
        const head = ref[0];
        if (!isVar(head, INPUT) && !isVar(head, 'data')) continue;
        const keys = ref.slice(1).map((t) => (isStr(t) ? t.value : ANY_KEY));
        const alias = imp.alias ?? (keys.length > 0 ? keys[keys.length - 1]! : (head.value as string));
        imports.set(alias, { root: head.value as string, keys });
      }
      const mod: ModInfo = { pkg, imports };
      const names = this.pkgNames.get(pkg.join('\0')) ?? new Set<string>();
      this.pkgNames.set(pkg.join('\0'), names);
      for (const rule of m.rules ?? []) {
        const head = rule['head'] as Node;
        const ref = nodes(head['ref']);
        const first = ref[0] ?? { type: 'var', value: head['name'] };
        names.add(first.value as string);
        const stat = [first.value as string];
        let i = 1;
        for (; i < ref.length && isStr(ref[i]); i++) stat.push((ref[i] as Node).value as string);
        const path = [...pkg, ...stat];
        const fn = Array.isArray(head['args']);
        const key = JSON.stringify(path) + (fn ? '()' : '');
        const g = this.groups.get(key) ?? { path, defs: [], fn };
        g.defs.push({ rule, mod, dynamic: ref.slice(i) });
        this.groups.set(key, g);
      }
    }
  }

  run(): string[][] {
    for (const [key, g] of this.groups) if (!g.fn) this.ruleVal(key);
    const wholes: InputPath[] = [];
    const exists: InputPath[] = [];
    for (const n of this.global) {
      // An argument origin cannot reach here; were it to, the whole input is the safe answer.
      const p = n.at.root === INPUT ? n.at.keys : [];
      (n.whole || n.at.root !== INPUT ? wholes : exists).push(p);
    }
    // A field whose presence matters is kept by any kept path through it; else it is kept whole.
    exists.sort((a, b) => b.length - a.length);
    for (const p of exists) if (!wholes.some((q) => through(q, p))) wholes.push(p);
    return minimalPaths(wholes);
  }

  // ---- rules and functions -------------------------------------------------------------

  /** A non-function rule's value (analysing its bodies once, their needs global). */
  private ruleVal(key: string): Val {
    const known = this.ruleVals.get(key);
    if (known === 'busy') {
      this.global.push({ whole: true, at: { root: INPUT, keys: [] } }); // recursion: not Rego
      return NONE;
    }
    if (known !== undefined) return known;
    this.ruleVals.set(key, 'busy');
    let elems: Origin[] = [];
    for (const def of this.groups.get(key)!.defs) {
      const ctx: Ctx = { mod: def.mod, needs: this.global, arrayComp: false };
      for (const r of elseChain(def.rule)) {
        const scope = this.scope(new Map(), nodes(r['body']));
        this.body(nodes(r['body']), scope, ctx);
        const head = r['head'] as Node;
        for (const d of def.dynamic) this.bare(this.term(d, scope, ctx), ctx);
        if (isObj(head['key']) && !isObj(head['value'])) {
          // A partial set rule: its elements are followed (a set cannot conflict).
          const v = this.term(head['key'], scope, ctx);
          elems = [...elems, ...v.exact];
          this.bare({ exact: [], elems: v.elems }, ctx);
        } else {
          // Any other value is read whole: a cut could make two conflicting values equal.
          if (isObj(head['key'])) this.bare(this.term(head['key'], scope, ctx), ctx);
          if (isObj(head['value'])) this.bare(this.term(head['value'], scope, ctx), ctx);
        }
      }
    }
    const v = { exact: [], elems };
    this.ruleVals.set(key, v);
    return v;
  }

  /** What a function reads of each argument (`#i` origins) and of the input. */
  private summary(key: string): FnSummary {
    const known = this.fnSummaries.get(key);
    if (known === 'busy') return { needs: [{ whole: true, at: { root: INPUT, keys: [] } }], allWhole: true };
    if (known !== undefined) return known;
    this.fnSummaries.set(key, 'busy');
    const s: FnSummary = { needs: [], allWhole: false };
    for (const def of this.groups.get(key)!.defs) {
      const ctx: Ctx = { mod: def.mod, needs: s.needs, arrayComp: false };
      for (const r of elseChain(def.rule)) {
        const head = r['head'] as Node;
        const env = new Map<string, Val>();
        const params = nodes((def.rule['head'] as Node)['args']);
        params.forEach((a, i) => {
          if (isVar(a)) env.set(a.value as string, { exact: [{ root: `#${i}`, keys: [] }], elems: [] });
        });
        const scope = this.scope(env, nodes(r['body']));
        // A pattern argument (`f({"a": x})`) is compared with the argument: read whole.
        params.forEach((a, i) => {
          if (!isVar(a)) {
            s.needs.push({ whole: true, at: { root: `#${i}`, keys: [] } });
            this.term(a, scope, ctx);
          }
        });
        this.body(nodes(r['body']), scope, ctx);
        if (isObj(head['value'])) this.bare(this.term(head['value'], scope, ctx), ctx);
      }
    }
    this.fnSummaries.set(key, s);
    return s;
  }

  private call(key: string, args: Node[], scope: Scope, ctx: Ctx): Val {
    const s = this.summary(key);
    const vals = args.map((a) => this.term(a, scope, ctx));
    for (const n of s.needs) {
      if (!n.at.root.startsWith('#')) {
        ctx.needs.push(n);
        continue;
      }
      const v = vals[Number(n.at.root.slice(1))];
      if (v === undefined) continue;
      for (const o of v.exact)
        ctx.needs.push({ whole: n.whole, at: { root: o.root, keys: [...o.keys, ...n.at.keys] } });
      this.bare({ exact: [], elems: v.elems }, ctx);
    }
    if (s.allWhole) for (const v of vals) this.bare(v, ctx);
    return NONE;
  }

  // ---- names ------------------------------------------------------------------------------

  /** A name that is not a local variable: the input, data, an import or a rule of the package. */
  private global_(name: string, mod: ModInfo): Origin | null {
    if (name === INPUT || name === 'data') return { root: name, keys: [] };
    const imp = mod.imports.get(name);
    if (imp !== undefined) return imp;
    if (this.pkgNames.get(mod.pkg.join('\0'))?.has(name)) return { root: 'data', keys: [...mod.pkg, name] };
    return null;
  }

  /** The user function a call's operator names, or null for a builtin. */
  private fnKey(op: Node, scope: Scope, mod: ModInfo): string | null {
    const ref = op.type === 'ref' ? nodes(op.value) : [op];
    const head = ref[0];
    if (!isVar(head) || scope.env.has(head.value as string)) return null;
    const g = this.global_(head.value as string, mod);
    if (g === null || g.root !== 'data' || !ref.slice(1).every(isStr)) return null;
    const key = JSON.stringify([...g.keys, ...ref.slice(1).map((t) => t.value as string)]) + '()';
    return this.groups.has(key) ? key : null;
  }

  // ---- bodies and expressions -------------------------------------------------------------

  /** A new scope for `body` from `outer`: the variables `body` declares are new ones. */
  private scope(outer: Map<string, Val>, body: Node[]): Scope {
    const env = new Map(outer);
    for (const e of body) {
      const t = e['terms'];
      if (isObj(t) && Array.isArray(t['symbols'])) {
        for (const s of nodes(t['symbols'])) {
          if (isVar(s)) env.delete(s.value as string);
          else if (s.type === 'call')
            for (const a of nodes(s.value).slice(1, -1)) if (isVar(a)) env.delete(a.value as string);
        }
      }
      if (Array.isArray(t) && isObj(t[0]) && isVar(nodes(t[0].value)[0], 'assign') && isVar(t[1]))
        env.delete(t[1].value as string);
    }
    // Variables of the enclosing scopes are bound: `=` compares them.
    return { env, binders: new Map([...env.keys()].map((k) => [k, -2])), expr: -1 };
  }

  /** Walks `body` until the variables' values no longer change (Rego reorders expressions). */
  private body(body: Node[], scope: Scope, ctx: Ctx): void {
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const before = this.envKey(scope.env);
      body.forEach((e, i) => {
        scope.expr = i;
        this.expr(e, scope, ctx);
      });
      if (this.envKey(scope.env) === before) return;
    }
    // Not settled: every variable's value is read whole.
    for (const v of scope.env.values()) this.bare(v, ctx);
  }

  private envKey(env: Map<string, Val>): string {
    return [...env]
      .map(([k, v]) => `${k}=${valKey(v)}`)
      .sort()
      .join(';');
  }

  private nested(body: Node[], scope: Scope, ctx: Ctx): Scope {
    const inner = this.scope(scope.env, body);
    this.body(body, inner, ctx);
    return inner;
  }

  private expr(e: Node, scope: Scope, ctx: Ctx): void {
    for (const w of nodes(e['with'])) {
      const target = w['target'] as Node;
      const head = target.type === 'ref' ? nodes(target.value)[0] : target;
      // Replacing (part of) the input: what the rules then read is not known here.
      if (
        isVar(head, INPUT) ||
        (isVar(head) && this.global_(head.value as string, ctx.mod)?.root === INPUT)
      ) {
        ctx.needs.push({ whole: true, at: { root: INPUT, keys: [] } });
      }
      this.bare(this.term(w['value'], scope, ctx), ctx);
    }
    const t = e['terms'];
    if (Array.isArray(t)) {
      this.bare(this.callOf(t[0] as Node, nodes(t).slice(1), scope, ctx), ctx);
    } else if (isObj(t) && Array.isArray(t['symbols'])) {
      for (const s of nodes(t['symbols'])) {
        if (isVar(s)) {
          if (!scope.env.has(s.value as string)) scope.env.set(s.value as string, NONE);
        } else if (s.type === 'call') this.someIn(nodes(s.value).slice(1), scope, ctx);
        else this.bare(this.term(s, scope, ctx), ctx);
      }
    } else if (isObj(t) && isObj(t['domain'])) {
      const inner = this.scope(scope.env, nodes(t['body']));
      const els = this.iterate(this.term(t['domain'], scope, ctx), ctx);
      // `every k, v in …` declares k and v anew.
      for (const d of [t['key'], t['value']]) if (isVar(d)) inner.env.delete(d.value);
      if (isObj(t['key'])) this.bind(t['key'], NONE, inner, ctx);
      if (isObj(t['value'])) this.bind(t['value'], els, inner, ctx);
      this.body(nodes(t['body']), inner, ctx);
    } else if (isObj(t) && Array.isArray(t['body'])) {
      this.nested(nodes(t['body']), scope, ctx);
    } else if (isObj(t) && t.type !== undefined) {
      this.bare(this.term(t, scope, ctx), ctx);
    } else this.opaque(t, scope, ctx);
  }

  /** `some x in c`, `some k, x in c`: `x` is an element of `c`. */
  private someIn(args: Node[], scope: Scope, ctx: Ctx): void {
    const coll = args[args.length - 1];
    if (coll === undefined) return;
    const els = this.iterate(this.term(coll, scope, ctx), ctx);
    if (args.length === 3) this.bind(args[0]!, NONE, scope, ctx);
    if (args.length >= 2) this.bind(args[args.length - 2]!, els, scope, ctx);
  }

  /** The elements of a collection; iterating keeps its keys (the cut keeps all under `*`). */
  private iterate(v: Val, ctx: Ctx): Val {
    const exact = v.exact.map((o) => ({ root: o.root, keys: [...o.keys, ANY_KEY] }));
    for (const o of exact) ctx.needs.push({ whole: false, at: o });
    // Elements of a rule's set that the cut makes equal are one element: an array
    // comprehension would count fewer, so there they are read whole.
    if (ctx.arrayComp) this.bare({ exact: [], elems: v.elems }, ctx);
    return { exact: [...exact, ...v.elems], elems: [] };
  }

  /** Binds `target` (a variable, or a pattern) to `v`. */
  private bind(target: Node, v: Val, scope: Scope, ctx: Ctx): void {
    if (isVar(target) && target.value !== INPUT) {
      const name = target.value as string;
      scope.env.set(name, unionVal(scope.env.get(name) ?? NONE, v));
      scope.binders.set(name, scope.expr);
      return;
    }
    // A pattern (`[a, b]`, `{"k": x}`) or a value compared: read whole.
    this.bare(v, ctx);
    this.bare(this.term(target, scope, ctx), ctx);
  }

  /** Whether `t` is a variable that `=` in the current expression binds rather than compares. */
  private bindable(t: Node, scope: Scope, ctx: Ctx): boolean {
    if (!isVar(t) || t.value === INPUT) return false;
    const name = t.value as string;
    if (!scope.env.has(name)) return this.global_(name, ctx.mod) === null;
    const by = scope.binders.get(name);
    return by === undefined ? valKey(scope.env.get(name)!) === '|' : by === scope.expr;
  }

  private callOf(op: Node, args: Node[], scope: Scope, ctx: Ctx): Val {
    const fn = this.fnKey(op, scope, ctx.mod);
    if (fn !== null) return this.call(fn, args, scope, ctx);
    const name = (op.type === 'ref' ? nodes(op.value) : [op]).map((t) => String(t.value)).join('.');
    const [a, b] = args;
    if (name === 'assign' && a !== undefined && b !== undefined) {
      this.bind(a, this.term(b, scope, ctx), scope, ctx);
    } else if (name === 'eq' && a !== undefined && b !== undefined) {
      const ab = this.bindable(a, scope, ctx);
      const bb = this.bindable(b, scope, ctx);
      if (ab) this.bind(a, this.term(b, scope, ctx), scope, ctx);
      if (bb) this.bind(b, this.term(a, scope, ctx), scope, ctx);
      if (!ab && !bb) {
        this.bare(this.term(a, scope, ctx), ctx);
        this.bare(this.term(b, scope, ctx), ctx);
      }
    } else if ((name === 'count' || TYPE_ONLY.has(name)) && a !== undefined) {
      // count reads how many keys or elements (a cut keeps them all under "*"), or a string
      // whole (a cut keeps scalars whole); type tests read the type. A rule's set is counted
      // whole: the cut could make two of its elements one.
      const v = this.term(a, scope, ctx);
      const at = name === 'count' ? [ANY_KEY] : [];
      for (const o of v.exact)
        ctx.needs.push({ whole: false, at: { root: o.root, keys: [...o.keys, ...at] } });
      this.bare({ exact: [], elems: v.elems }, ctx);
      for (const x of args.slice(1)) this.bare(this.term(x, scope, ctx), ctx);
    } else {
      // Any other builtin (comparison, walk, object.get, json.marshal…) reads its operands whole.
      for (const x of args) this.bare(this.term(x, scope, ctx), ctx);
    }
    return NONE;
  }

  // ---- terms --------------------------------------------------------------------------------

  private term(t: unknown, scope: Scope, ctx: Ctx): Val {
    if (!isObj(t)) return NONE;
    switch (t.type) {
      case 'var':
        return this.ref([t], scope, ctx);
      case 'ref':
        return this.ref(nodes(t.value), scope, ctx);
      case 'call': {
        const [op, ...args] = nodes(t.value);
        return op === undefined ? NONE : this.callOf(op, args, scope, ctx);
      }
      case 'array':
      case 'set':
        for (const x of nodes(t.value)) this.bare(this.term(x, scope, ctx), ctx);
        return NONE;
      case 'object':
        for (const kv of t.value as unknown[])
          for (const x of nodes(kv)) this.bare(this.term(x, scope, ctx), ctx);
        return NONE;
      case 'arraycomprehension':
      case 'setcomprehension':
      case 'objectcomprehension': {
        const c = t.value as Node;
        const inner = this.nested(nodes(c['body']), scope, {
          ...ctx,
          arrayComp: t.type === 'arraycomprehension',
        });
        for (const k of ['term', 'key', 'value']) this.bare(this.term(c[k], inner, ctx), ctx);
        return NONE;
      }
      case 'null':
      case 'boolean':
      case 'number':
      case 'string':
        return NONE;
      default:
        this.opaque(t.value, scope, ctx);
        return NONE;
    }
  }

  /** A node of a kind this does not know: every reference and call in it reads whole. */
  private opaque(x: unknown, scope: Scope, ctx: Ctx): void {
    if (Array.isArray(x)) for (const y of x) this.opaque(y, scope, ctx);
    else if (isObj(x)) {
      if (x.type === 'var' || x.type === 'ref' || x.type === 'call') this.bare(this.term(x, scope, ctx), ctx);
      else for (const y of Object.values(x)) this.opaque(y, scope, ctx);
    }
  }

  private ref(ref: Node[], scope: Scope, ctx: Ctx): Val {
    const head = ref[0];
    if (head === undefined) return NONE;
    let base: Val;
    const rest = ref.slice(1);
    if (isVar(head)) {
      const name = head.value as string;
      const local = scope.env.get(name);
      const g = local === undefined ? this.global_(name, ctx.mod) : null;
      if (local !== undefined) base = local;
      else if (g === null) {
        scope.env.set(name, NONE); // a variable first seen here
        scope.binders.set(name, scope.expr);
        base = NONE;
      } else if (g.root === INPUT) base = { exact: [{ root: INPUT, keys: g.keys }], elems: [] };
      else return this.data([...g.keys.map((k) => ({ type: 'string', value: k })), ...rest], scope, ctx);
    } else base = this.term(head, scope, ctx);
    return this.lookup(base, rest, scope, ctx);
  }

  /** `base` looked up by `rest` (string keys, or any other term: `"*"`). */
  private lookup(base: Val, keys: Node[], scope: Scope, ctx: Ctx): Val {
    let rest = keys;
    if (rest.length === 0) return base;
    const exact = base.exact.map((o) => ({ root: o.root, keys: [...o.keys] }));
    if (base.elems.length > 0) {
      // `r[x]` on a rule's set: x (unbound) is an element; a given x is compared.
      const k = rest[0]!;
      if (isVar(k) && !scope.env.has(k.value as string))
        this.bind(k, { exact: base.elems, elems: [] }, scope, ctx);
      else {
        this.bare(this.term(k, scope, ctx), ctx);
        this.bare({ exact: [], elems: base.elems }, ctx);
      }
      exact.push(...base.elems.map((o) => ({ root: o.root, keys: [...o.keys] })));
      rest = rest.slice(1);
    }
    for (const k of rest) {
      const key = isStr(k) ? k.value : ANY_KEY;
      if (!isStr(k)) this.bare(this.term(k, scope, ctx), ctx);
      for (const o of exact) o.keys.push(key);
    }
    for (const o of exact) ctx.needs.push({ whole: false, at: o });
    return { exact, elems: [] };
  }

  /** A reference into `data`: a rule's value, a function, a package (its rules whole) or base data. */
  private data(keys: Node[], scope: Scope, ctx: Ctx): Val {
    let n = 0;
    while (n < keys.length && isStr(keys[n])) n++;
    const stat = keys.slice(0, n).map((t) => t.value as string);
    let out: Val = NONE;
    let matched = false;
    for (const [key, g] of this.groups) {
      if (g.fn) continue;
      if (g.path.length <= n && g.path.every((k, i) => k === ANY_KEY || k === stat[i])) {
        const v = this.ruleVal(key);
        matched = true;
        out = unionVal(out, this.lookup(v, keys.slice(g.path.length), scope, ctx));
      } else if (g.path.length > n && stat.every((k, i) => g.path[i] === ANY_KEY || g.path[i] === k)) {
        this.bare(this.ruleVal(key), ctx);
      }
    }
    if (!matched) for (const k of keys.slice(n)) this.bare(this.term(k, scope, ctx), ctx);
    return out;
  }

  /** A value used as it is: compared, returned, put in a collection, passed to a builtin. */
  private bare(v: Val, ctx: Ctx): void {
    for (const o of [...v.exact, ...v.elems]) ctx.needs.push({ whole: true, at: o });
  }
}

/** A rule and its `else` rules, in order. */
function elseChain(rule: Node): Node[] {
  const out: Node[] = [];
  for (let r: unknown = rule; isObj(r); r = r['else']) out.push(r);
  return out;
}

/** Whether keeping `q` keeps the field at `p` when it is there (a path through it, or above). */
function through(q: InputPath, p: InputPath): boolean {
  const n = Math.min(q.length, p.length);
  for (let i = 0; i < n; i++) if (q[i] !== ANY_KEY && (p[i] === ANY_KEY || q[i] !== p[i])) return false;
  return true;
}

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
  for (const m of modules) {
    if (typeof m !== 'object' || m === null || !('package' in m)) {
      throw new Error('not a Rego module AST (opa parse --format json)');
    }
  }
  return new Analysis(modules as ModuleAst[]).run();
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
