/**
 * The columns a statement reads and writes, from libpg-query's parse tree: every explicit column
 * reference (`ColumnRef`), qualified with its base table where the query says which one it is, and
 * every `*` (`SELECT *`, `t.*`, `RETURNING *`, an INSERT without a column list) as a star entry.
 *
 * Resolution follows SQL's scoping, without a catalog:
 *   - `t.c` / `s.t.c`: `t` is looked up among the FROM items (and DML targets) of this query, then of
 *     the enclosing ones (correlated subqueries); an alias stands for its table. A FROM item that is
 *     a subquery, a CTE or a function has no base table: `table` is null.
 *   - `c`: qualified when exactly one relation can supply it, i.e. this query has exactly one FROM
 *     item and no enclosing query has any (in a correlated subquery `c` could be either's);
 *     otherwise `table` is null: pgward cannot tell without the catalog.
 *   - `*`: one star entry per FROM item of the query (each with its table, or null); a bare name
 *     that is also a FROM item's name (`SELECT u FROM users u`: a whole-row reference) adds one.
 * Reads are references anywhere (select list, WHERE, JOIN ON, GROUP BY, RETURNING, SET values…);
 * writes are INSERT's column list, UPDATE's SET targets, ON CONFLICT DO UPDATE's SET targets and
 * MERGE's UPDATE SET / INSERT (columns).
 * COPY table (columns) TO reads them, COPY … FROM writes them (every column, a star, without a list).
 * SQL hidden in strings, functions' bodies and views' definitions are not read here.
 *
 * The walk is iterative (an explicit stack), so that nesting the classifier accepts never
 * overflows the JavaScript stack here.
 */
import type { ColumnInfo } from './types';

type Body = Record<string, unknown>;

/** A FROM item: a base table, or something without one (subquery, CTE, function, VALUES). */
interface Source {
  schema: string | null;
  table: string | null;
}

interface Scope {
  parent: Scope | null;
  /** FROM items and DML targets by the name a query uses for them (alias, else table name). */
  byName: Map<string, Source>;
  items: Source[];
  /** CTE names visible here (a RangeVar without schema naming one is the CTE, not a table). */
  ctes: Set<string>;
}

interface Task {
  node: unknown;
  scope: Scope;
}

const isObject = (v: unknown): v is Body => v !== null && typeof v === 'object' && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Query nodes: each opens a scope of its own. */
const QUERY_NODES: ReadonlySet<string> = new Set([
  'SelectStmt',
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
]);

class Collector {
  readonly out: ColumnInfo[] = [];
  private readonly seen = new Set<string>();

  add(c: ColumnInfo): void {
    const k = `${c.schema}\u0000${c.table}\u0000${c.column}\u0000${c.access}\u0000${c.star}`;
    if (this.seen.has(k)) return;
    this.seen.add(k);
    this.out.push(c);
  }
}

function newScope(parent: Scope | null): Scope {
  return { parent, byName: new Map(), items: [], ctes: new Set(parent?.ctes ?? []) };
}

/** A scope beside `scope`: the same enclosing query and CTEs, none of its FROM items. */
function besides(scope: Scope): Scope {
  return { ...newScope(scope.parent), ctes: new Set(scope.ctes) };
}

function lookup(scope: Scope, name: string): Source | undefined {
  for (let s: Scope | null = scope; s !== null; s = s.parent) {
    const found = s.byName.get(name);
    if (found !== undefined) return found;
  }
  return undefined;
}

function outerHasItems(scope: Scope): boolean {
  for (let s = scope.parent; s !== null; s = s.parent) if (s.items.length > 0) return true;
  return false;
}

function addSource(scope: Scope, name: string | null, source: Source): void {
  scope.items.push(source);
  if (name !== null) scope.byName.set(name, source);
}

/** A RangeVar as a FROM item or DML target: a base table, or a CTE when it names one. */
function rangeVarSource(rv: Body, scope: Scope): [string, Source] {
  const schema = str(rv['schemaname']);
  const table = str(rv['relname']) ?? '';
  const alias = isObject(rv['alias']) ? str(rv['alias']['aliasname']) : null;
  const isCte = schema === null && scope.ctes.has(table);
  return [alias ?? table, isCte ? { schema: null, table: null } : { schema, table }];
}

/**
 * Registers the FROM items of `items` in `scope` and returns the subtrees to walk: subqueries in
 * the scope they see (LATERAL: this one; otherwise the enclosing one), join conditions and
 * function arguments in this one.
 */
function registerFrom(items: unknown[], scope: Scope, tasks: Task[]): void {
  const pending = [...items];
  while (pending.length > 0) {
    const item = pending.shift();
    if (!isObject(item)) continue;
    const [type, body] = Object.entries(item)[0] ?? [];
    if (!isObject(body)) continue;
    if (type === 'RangeVar') {
      const [name, source] = rangeVarSource(body, scope);
      addSource(scope, name, source);
    } else if (type === 'JoinExpr') {
      pending.unshift(body['larg'], body['rarg']);
      tasks.push({ node: body['quals'], scope });
      for (const u of asArray(body['usingClause'])) {
        const col = isObject(u) && isObject(u['String']) ? str(u['String']['sval']) : null;
        if (col !== null) tasks.push({ node: { ColumnRef: { fields: [{ String: { sval: col } }] } }, scope });
      }
      const alias = isObject(body['alias']) ? str(body['alias']['aliasname']) : null;
      if (alias !== null) scope.byName.set(alias, { schema: null, table: null });
    } else {
      // RangeSubselect, RangeFunction, RangeTableFunc, …: no base table.
      const alias = isObject(body['alias']) ? str(body['alias']['aliasname']) : null;
      addSource(scope, alias, { schema: null, table: null });
      const lateral = body['lateral'] === true;
      const inner = lateral ? newScope(scope) : besides(scope);
      for (const [k, v] of Object.entries(body)) if (k !== 'alias') tasks.push({ node: v, scope: inner });
    }
  }
}

function resolveColumnRef(ref: Body, scope: Scope, found: Collector): void {
  const fields = asArray(ref['fields']);
  const star =
    fields.length > 0 &&
    isObject(fields[fields.length - 1]) &&
    'A_Star' in (fields[fields.length - 1] as Body);
  const names = fields.map((f) => (isObject(f) && isObject(f['String']) ? str(f['String']['sval']) : null));
  const column = star ? null : (names[names.length - 1] ?? null);
  const qualifier = names.slice(0, -1);
  if (qualifier.some((n) => n === null)) return;
  if (qualifier.length === 0) {
    if (star) {
      for (const s of scope.items) found.add({ ...s, column: null, access: 'read', star: true });
      if (scope.items.length === 0)
        found.add({ schema: null, table: null, column: null, access: 'read', star: true });
      return;
    }
    // A name that is also a FROM item's name may be a whole-row reference (`SELECT u FROM users u`,
    // `row_to_json(u)`): every column of that relation, so a star entry too.
    const row = column !== null ? lookup(scope, column) : undefined;
    if (row !== undefined) found.add({ ...row, column: null, access: 'read', star: true });
    const only = scope.items.length === 1 && !outerHasItems(scope) ? scope.items[0]! : null;
    found.add({
      schema: only?.schema ?? null,
      table: only?.table ?? null,
      column,
      access: 'read',
      star: false,
    });
    return;
  }
  // t.c, s.t.c, db.s.t.c: the last qualifier is the table (or alias), the one before the schema.
  const t = qualifier[qualifier.length - 1] as string;
  const s = qualifier.length >= 2 ? (qualifier[qualifier.length - 2] as string) : null;
  const source = s === null ? lookup(scope, t) : undefined;
  const resolved: Source = source ?? { schema: s, table: t };
  found.add({ schema: resolved.schema, table: resolved.table, column, access: 'read', star });
}

function written(target: Source, names: unknown[], found: Collector): void {
  let any = false;
  for (const t of names) {
    const rt = isObject(t) && isObject(t['ResTarget']) ? t['ResTarget'] : null;
    const name = rt ? str(rt['name']) : null;
    if (name === null) continue;
    any = true;
    found.add({ schema: target.schema, table: target.table, column: name, access: 'write', star: false });
  }
  if (!any)
    found.add({ schema: target.schema, table: target.table, column: null, access: 'write', star: true });
}

/** COPY table [(columns)] TO / FROM: the columns (every one when none are listed) read or written. */
function visitCopy(body: Body, outer: Scope, tasks: Task[], found: Collector): void {
  const rv = isObject(body['relation']) ? body['relation'] : null;
  if (rv === null) {
    tasks.push({ node: body['query'], scope: outer });
    return;
  }
  const scope = newScope(outer);
  const [name, target] = rangeVarSource(rv, scope);
  addSource(scope, name, target);
  const access = body['is_from'] === true ? 'write' : 'read';
  const names = asArray(body['attlist']).map((a) =>
    isObject(a) && isObject(a['String']) ? str(a['String']['sval']) : null,
  );
  for (const column of names) if (column !== null) found.add({ ...target, column, access, star: false });
  if (names.length === 0) found.add({ ...target, column: null, access, star: true });
  // COPY … FROM … WHERE reads the rows being loaded.
  tasks.push({ node: body['whereClause'], scope });
}

/** MERGE … WHEN … THEN UPDATE SET / INSERT (columns): the targets written, the values and conditions read. */
function visitMergeClauses(
  clauses: unknown[],
  target: Source,
  scope: Scope,
  tasks: Task[],
  found: Collector,
): void {
  for (const c of clauses) {
    const w = isObject(c) && isObject(c['MergeWhenClause']) ? c['MergeWhenClause'] : null;
    if (w === null) continue;
    const set = asArray(w['targetList']);
    if (w['commandType'] === 'CMD_UPDATE' || w['commandType'] === 'CMD_INSERT') written(target, set, found);
    for (const x of set)
      if (isObject(x) && isObject(x['ResTarget'])) tasks.push({ node: x['ResTarget']['val'], scope });
    tasks.push({ node: w['values'], scope }, { node: w['condition'], scope });
  }
}

/** Opens the scope of a query node and queues its parts in it. */
function visitQuery(type: string, body: Body, outer: Scope, tasks: Task[], found: Collector): void {
  const scope = newScope(outer);
  const withClause = isObject(body['withClause']) ? body['withClause'] : null;
  for (const c of asArray(withClause?.['ctes'])) {
    const cte = isObject(c) && isObject(c['CommonTableExpr']) ? c['CommonTableExpr'] : null;
    const name = cte ? str(cte['ctename']) : null;
    if (name !== null) scope.ctes.add(name);
    // A CTE sees the CTEs before it (and itself, when recursive), not this query's FROM items.
    if (cte) tasks.push({ node: cte['ctequery'], scope: besides(scope) });
  }
  const skip = new Set(['withClause', 'fromClause', 'relation', 'usingClause']);
  if (type === 'InsertStmt' || type === 'UpdateStmt' || type === 'DeleteStmt' || type === 'MergeStmt') {
    const rv = isObject(body['relation']) ? body['relation'] : null;
    if (rv) {
      const [name, target] = rangeVarSource(rv, scope);
      if (type === 'InsertStmt') {
        skip.add('cols').add('selectStmt');
        written(target, asArray(body['cols']), found);
        // The source query does not see the target table.
        tasks.push({ node: body['selectStmt'], scope: besides(scope) });
        const conflict = isObject(body['onConflictClause']) ? body['onConflictClause'] : null;
        if (conflict) {
          skip.add('onConflictClause');
          const set = asArray(conflict['targetList']);
          if (set.length > 0) written(target, set, found);
          for (const t of set)
            if (isObject(t) && isObject(t['ResTarget'])) tasks.push({ node: t['ResTarget']['val'], scope });
          tasks.push({ node: conflict['whereClause'], scope }, { node: conflict['infer'], scope });
          // EXCLUDED.c reads the row proposed for insertion: the target's column.
          scope.byName.set('excluded', target);
        }
      }
      addSource(scope, name, target);
      if (type === 'MergeStmt') {
        skip.add('sourceRelation').add('mergeWhenClauses');
        registerFrom([body['sourceRelation']], scope, tasks);
        visitMergeClauses(asArray(body['mergeWhenClauses']), target, scope, tasks, found);
      }
      if (type === 'UpdateStmt') {
        skip.add('targetList');
        written(target, asArray(body['targetList']), found);
        for (const t of asArray(body['targetList']))
          if (isObject(t) && isObject(t['ResTarget'])) tasks.push({ node: t['ResTarget']['val'], scope });
      }
    }
  }
  // UNION / INTERSECT / EXCEPT: each side is a query of its own (not wrapped in a node type).
  for (const side of ['larg', 'rarg'])
    if (isObject(body[side])) {
      skip.add(side);
      tasks.push({ node: { SelectStmt: body[side] }, scope: besides(scope) });
    }
  registerFrom([...asArray(body['fromClause']), ...asArray(body['usingClause'])], scope, tasks);
  for (const [k, v] of Object.entries(body)) if (!skip.has(k)) tasks.push({ node: v, scope });
}

/** The columns `node` (a statement node's type and body) reads and writes, each once. */
export function statementColumns(type: string, body: Body): ColumnInfo[] {
  const found = new Collector();
  const tasks: Task[] = [{ node: { [type]: body }, scope: newScope(null) }];
  // Depth first, in source order: pop from the end, push children reversed.
  while (tasks.length > 0) {
    const { node, scope } = tasks.pop() as Task;
    if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) tasks.push({ node: node[i], scope });
      continue;
    }
    if (!isObject(node)) continue;
    const entries = Object.entries(node);
    if (entries.length === 1) {
      const [t, b] = entries[0] as [string, unknown];
      if (t === 'ColumnRef' && isObject(b)) {
        resolveColumnRef(b, scope, found);
        continue;
      }
      if ((QUERY_NODES.has(t) || t === 'CopyStmt') && isObject(b)) {
        const queued: Task[] = [];
        if (t === 'CopyStmt') visitCopy(b, scope, queued, found);
        else visitQuery(t, b, scope, queued, found);
        for (let i = queued.length - 1; i >= 0; i--) tasks.push(queued[i]!);
        continue;
      }
    }
    for (let i = entries.length - 1; i >= 0; i--) tasks.push({ node: entries[i]![1], scope });
  }
  return found.out;
}
