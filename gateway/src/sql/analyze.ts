/**
 * Classification of one parsed statement: a single walk over libpg-query's JSON parse tree that
 * collects relations (with read/write/ddl access, CTE names resolved), called functions, settings
 * changes, role changes and writes hidden anywhere in the tree.
 *
 * Parse-tree shape (libpg-query JSON): a node is `{ "NodeType": { ...fields } }`; fields typed as a
 * specific struct in PostgreSQL's parsenodes.h are emitted without that wrapper (e.g.
 * `DeleteStmt.relation` is a bare RangeVar, `SelectStmt.larg` a bare SelectStmt). Identifiers
 * arrive already case-folded and de-quoted, `U&"..."` escapes decoded.
 */
import { fingerprintStatement, parseStatements, scanTokens } from './parser';
import { hasSideEffects } from './side-effect-functions';
import { SQL_TEXT_FUNCTIONS } from './sql-text-functions';
import { statementKind } from './statement-kinds';
import type {
  CopyInfo,
  PreparedInfo,
  RelationAccess,
  RelationRef,
  SettingInfo,
  SqlTextCall,
  StatementInfo,
  TransactionInfo,
  TransactionMode,
} from './types';

type Body = Record<string, unknown>;

/** CTE names visible at a point of the tree (innermost first). */
interface Scope {
  names: Set<string>;
  parent: Scope | null;
}

/** What the walk found; turned into a StatementInfo at the end. */
interface Found {
  relations: RelationRef[];
  relationKeys: Set<string>;
  functions: string[];
  functionSet: Set<string>;
  settings: SettingInfo[];
  /** A data-modifying statement, a write/ddl relation or SELECT INTO somewhere in the tree. */
  writes: boolean;
  /** SELECT INTO / CREATE TABLE AS nested anywhere. */
  createsTable: boolean;
  sideEffects: boolean;
  roleChange: boolean;
  /** At least one UPDATE/DELETE in the tree, and whether one of them has no WHERE. */
  updateOrDelete: boolean;
  missingWhere: boolean;
  /** Name of the first EXECUTE found (CREATE TABLE AS EXECUTE, EXPLAIN ANALYZE EXECUTE). */
  executes: string | undefined;
  /** Calls of functions that run SQL from a string argument. */
  sqlTextCalls: SqlTextCall[];
  /** DDL inside SQL run from a string. */
  innerDdl: boolean;
}

/** Settings whose change is a change of the current role (see role_change). */
const ROLE_SETTINGS: ReadonlySet<string> = new Set(['role', 'session_authorization']);

/** Node types whose subtree never holds a relation, a function call or a statement. */
const LEAVES: ReadonlySet<string> = new Set([
  'String',
  'Integer',
  'Float',
  'Boolean',
  'BitString',
  'A_Const',
  'A_Star',
  'ColumnRef',
  'ParamRef',
  'TypeName',
  'Alias',
  'SQLValueFunction',
  'RoleSpec',
  'SetToDefault',
]);

/** Access of a RangeVar held directly (or through a list) by a given field of a given node. */
const FIELD_ACCESS: Readonly<Record<string, Readonly<Record<string, RelationAccess>>>> = {
  InsertStmt: { relation: 'write' },
  UpdateStmt: { relation: 'write' },
  DeleteStmt: { relation: 'write' },
  MergeStmt: { relation: 'write' },
  TruncateStmt: { relations: 'write' },
  RefreshMatViewStmt: { relation: 'write' },
  ClusterStmt: { relation: 'write' },
  ReindexStmt: { relation: 'write' },
  VacuumRelation: { relation: 'write' },
  CreateStmt: { relation: 'ddl' },
  ViewStmt: { view: 'ddl' },
  IndexStmt: { relation: 'ddl' },
  AlterTableStmt: { relation: 'ddl' },
  PartitionCmd: { name: 'ddl' },
  RenameStmt: { relation: 'ddl' },
  AlterObjectSchemaStmt: { relation: 'ddl' },
  AlterObjectDependsStmt: { relation: 'ddl' },
  AlterOwnerStmt: { relation: 'ddl' },
  CreateTrigStmt: { relation: 'ddl' },
  RuleStmt: { relation: 'ddl' },
  CreatePolicyStmt: { table: 'ddl' },
  AlterPolicyStmt: { table: 'ddl' },
  CreateStatsStmt: { relations: 'ddl' },
  CreateSeqStmt: { sequence: 'ddl' },
  AlterSeqStmt: { sequence: 'ddl' },
  GrantStmt: { objects: 'ddl' },
};

/** Fields holding a node without its `{ "Type": ... }` wrapper that the walk must type. */
const BARE_NODE_FIELDS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  SelectStmt: { larg: 'SelectStmt', rarg: 'SelectStmt' },
  CallStmt: { funccall: 'FuncCall' },
  CreateForeignTableStmt: { base: 'CreateStmt' },
  AlterDefaultPrivilegesStmt: { action: 'GrantStmt' },
  AlterDatabaseSetStmt: { setstmt: 'VariableSetStmt' },
  AlterRoleSetStmt: { setstmt: 'VariableSetStmt' },
  AlterSystemStmt: { setstmt: 'VariableSetStmt' },
};

/** DROP of these object types names relations (`objects` = lists of name parts). */
const DROPPED_RELATIONS: ReadonlySet<string> = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_INDEX',
  'OBJECT_SEQUENCE',
  'OBJECT_FOREIGN_TABLE',
]);
/** DROP TRIGGER/RULE/POLICY name ON table: the last part is the object, the rest the table. */
const DROPPED_ON_RELATION: ReadonlySet<string> = new Set(['OBJECT_TRIGGER', 'OBJECT_RULE', 'OBJECT_POLICY']);

function newFound(): Found {
  return {
    relations: [],
    relationKeys: new Set(),
    functions: [],
    functionSet: new Set(),
    settings: [],
    writes: false,
    createsTable: false,
    sideEffects: false,
    roleChange: false,
    updateOrDelete: false,
    missingWhere: false,
    executes: undefined,
    sqlTextCalls: [],
    innerDdl: false,
  };
}

const isObject = (v: unknown): v is Body => v !== null && typeof v === 'object' && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The single `[type, body]` of a wrapped node, or null. */
export function unwrapNode(v: unknown): [string, Body] | null {
  if (!isObject(v)) return null;
  for (const k in v) {
    const body = v[k];
    return isObject(body) ? [k, body] : null;
  }
  return null;
}

function inScope(scope: Scope | null, name: string): boolean {
  for (let s = scope; s !== null; s = s.parent) if (s.names.has(name)) return true;
  return false;
}

function addRelation(found: Found, schema: string | null, name: string, access: RelationAccess): void {
  const key = `${schema ?? ''}\u0000${name}\u0000${access}`;
  if (found.relationKeys.has(key)) return;
  found.relationKeys.add(key);
  found.relations.push({ schema, name, access });
  if (access !== 'read') found.writes = true;
}

function visitRangeVar(rv: Body, access: RelationAccess, scope: Scope | null, found: Found): void {
  const name = text(rv['relname']);
  if (name === null) return;
  const schema = text(rv['schemaname']);
  // An unqualified name read where a WITH query of that name is visible is the CTE, not a table.
  if (access === 'read' && schema === null && inScope(scope, name)) return;
  addRelation(found, schema, name, access);
}

/**
 * A pending step of the walk. The walk uses an explicit stack rather than recursion: PostgreSQL
 * accepts expressions nested thousands deep, deeper than the JavaScript call stack.
 */
type Task =
  | { kind: 'value'; value: unknown; access: RelationAccess; scope: Scope | null }
  | { kind: 'node'; type: string; body: Body; access: RelationAccess; scope: Scope | null }
  /** A non-recursive CTE becomes visible to the CTEs after it once its own query is walked. */
  | { kind: 'cte'; names: Set<string>; name: string };

/** Walks the tree under a top-level node, children in document order. */
function walk(type: string, body: Body, found: Found): void {
  const stack: Task[] = [{ kind: 'node', type, body, access: 'read', scope: null }];
  for (let task = stack.pop(); task !== undefined; task = stack.pop()) {
    if (task.kind === 'cte') task.names.add(task.name);
    else if (task.kind === 'value') expandValue(task.value, task.access, task.scope, found, stack);
    else expandNode(task.type, task.body, task.access, task.scope, found, stack);
  }
}

/** Any JSON value: a list, a wrapped node `{ "Type": {...} }`, or a bare struct. */
function expandValue(
  v: unknown,
  access: RelationAccess,
  scope: Scope | null,
  found: Found,
  stack: Task[],
): void {
  if (v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (let i = v.length - 1; i >= 0; i--) stack.push({ kind: 'value', value: v[i], access, scope });
    return;
  }
  const o = v as Body;
  if (typeof o['relname'] === 'string') {
    visitRangeVar(o, access, scope, found);
    return;
  }
  const keys = Object.keys(o);
  for (let i = keys.length - 1; i >= 0; i--) {
    const k = keys[i] as string;
    const child = o[k];
    if (child === null || typeof child !== 'object') continue;
    const c = k.charCodeAt(0);
    if (c >= 65 && c <= 90) {
      if (!Array.isArray(child)) stack.push({ kind: 'node', type: k, body: child as Body, access, scope });
    } else {
      stack.push({ kind: 'value', value: child, access: 'read', scope });
    }
  }
}

/** IntoClause of SELECT INTO / CREATE TABLE AS / CREATE MATERIALIZED VIEW: creates and fills a table. */
function recordInto(into: Body, found: Found): void {
  const rel = into['rel'];
  if (isObject(rel)) {
    const name = text(rel['relname']);
    if (name !== null) {
      const schema = text(rel['schemaname']);
      addRelation(found, schema, name, 'ddl');
      addRelation(found, schema, name, 'write');
    }
  }
  found.createsTable = true;
  found.writes = true;
}

function expandNode(
  type: string,
  body: Body,
  access: RelationAccess,
  scope: Scope | null,
  found: Found,
  stack: Task[],
): void {
  switch (type) {
    case 'RangeVar':
      visitRangeVar(body, access, scope, found);
      return;
    case 'List':
      stack.push({ kind: 'value', value: body['items'], access, scope });
      return;
    case 'FuncCall':
      recordFuncCall(body, found);
      break;
    case 'InsertStmt':
    case 'MergeStmt':
      found.writes = true;
      break;
    case 'UpdateStmt':
    case 'DeleteStmt':
      found.writes = true;
      found.updateOrDelete = true;
      if (body['whereClause'] === undefined) found.missingWhere = true;
      break;
    case 'VariableSetStmt':
      recordVariableSet(body, found);
      break;
    case 'ExecuteStmt':
      if (found.executes === undefined) found.executes = text(body['name']) ?? '';
      break;
    case 'DropStmt':
      recordDroppedRelations(body, found);
      break;
    case 'CopyStmt':
      if (isObject(body['relation'])) {
        visitRangeVar(body['relation'], body['is_from'] === true ? 'write' : 'read', scope, found);
      }
      break;
    default:
      if (LEAVES.has(type)) return;
  }

  // A WITH clause scopes its CTE names over the whole statement (including the CTEs themselves).
  const withClause = body['withClause'];
  const inner: Scope | null = isObject(withClause) ? { names: new Set(), parent: scope } : scope;
  const fieldAccess = FIELD_ACCESS[type];
  const bareFields = BARE_NODE_FIELDS[type];
  const keys = Object.keys(body);
  for (let i = keys.length - 1; i >= 0; i--) {
    const k = keys[i] as string;
    const child = body[k];
    if (child === null || typeof child !== 'object' || k === 'withClause') continue;
    if (k === 'intoClause' || (k === 'into' && type === 'CreateTableAsStmt')) {
      if (!isObject(child)) continue;
      recordInto(child, found);
      for (const ik in child) {
        if (ik !== 'rel') stack.push({ kind: 'value', value: child[ik], access: 'read', scope: inner });
      }
      continue;
    }
    if (type === 'CopyStmt' && k === 'relation') continue;
    const bareType = bareFields?.[k];
    if (bareType !== undefined && isObject(child)) {
      stack.push({ kind: 'node', type: bareType, body: child, access: 'read', scope: inner });
    } else {
      stack.push({ kind: 'value', value: child, access: fieldAccess?.[k] ?? 'read', scope: inner });
    }
  }
  if (inner !== scope && isObject(withClause)) pushWith(withClause, inner as Scope, stack);
}

/** WITH: non-recursive CTEs see the ones before them; recursive ones see all of them. */
function pushWith(w: Body, inner: Scope, stack: Task[]): void {
  const ctes = asArray(w['ctes']);
  const recursive = w['recursive'] === true;
  for (let i = ctes.length - 1; i >= 0; i--) {
    const node = unwrapNode(ctes[i]);
    if (node === null) continue;
    const name = text(node[1]['ctename']);
    if (name !== null) {
      if (recursive) inner.names.add(name);
      else stack.push({ kind: 'cte', names: inner.names, name });
    }
    stack.push({ kind: 'node', type: node[0], body: node[1], access: 'read', scope: inner });
  }
}

function nameParts(list: unknown): string[] {
  const parts: string[] = [];
  for (const item of asArray(list)) {
    const s = isObject(item) && isObject(item['String']) ? text(item['String']['sval']) : null;
    if (s !== null) parts.push(s);
  }
  return parts;
}

function recordDroppedRelations(body: Body, found: Found): void {
  const removeType = text(body['removeType']) ?? '';
  const whole = DROPPED_RELATIONS.has(removeType);
  if (!whole && !DROPPED_ON_RELATION.has(removeType)) return;
  for (const obj of asArray(body['objects'])) {
    const list = isObject(obj) && isObject(obj['List']) ? obj['List']['items'] : undefined;
    const parts = nameParts(list);
    if (!whole) parts.pop();
    const name = parts[parts.length - 1];
    if (name === undefined) continue;
    addRelation(found, parts.length >= 2 ? (parts[parts.length - 2] ?? null) : null, name, 'ddl');
  }
}

/**
 * The text of a constant expression (`'x'`, `1`, `1.5`, `true`, `'x'::text`), null for SQL NULL,
 * undefined when the expression is not a constant.
 */
function constantText(v: unknown): string | null | undefined {
  const node = unwrapNode(v);
  if (node === null) return undefined;
  const [type, body] = node;
  if (type === 'TypeCast') return constantText(body['arg']);
  if (type === 'String') return text(body['sval']) ?? '';
  if (type !== 'A_Const') return undefined;
  if (body['isnull'] === true) return null;
  const { sval, ival, fval, boolval, bsval } = body;
  if (isObject(sval)) return text(sval['sval']) ?? '';
  if (isObject(ival)) return String(typeof ival['ival'] === 'number' ? ival['ival'] : 0);
  if (isObject(fval)) return text(fval['fval']) ?? '';
  if (isObject(boolval)) return boolval['boolval'] === true ? 'true' : 'false';
  if (isObject(bsval)) return text(bsval['bsval']) ?? '';
  return undefined;
}

/** PostgreSQL's parse_bool: unique prefixes of true/false/yes/no, on/off (2+ letters), 1/0. */
export function parseBool(value: string | null | undefined): boolean | null {
  if (value === null || value === undefined) return null;
  const v = value.trim().toLowerCase();
  if (v === '') return null;
  if ('true'.startsWith(v) || 'yes'.startsWith(v) || v === '1') return true;
  if ('false'.startsWith(v) || 'no'.startsWith(v) || v === '0') return false;
  if (v.length >= 2 && 'on'.startsWith(v)) return true;
  if (v.length >= 2 && 'off'.startsWith(v)) return false;
  return null;
}

/**
 * set_config(name, value, is_local) anywhere in the tree. GUC names are case-insensitive. A name
 * that is not a constant could be 'role': it is recorded as '*' and counts as a role change.
 */
function recordSetConfig(args: unknown[], found: Found): void {
  const rawName = constantText(args[0]);
  const name = typeof rawName === 'string' ? rawName.trim().toLowerCase() : '*';
  const value = constantText(args[1]);
  const local = parseBool(constantText(args[2])) === true;
  found.settings.push({ name, value: value ?? null, local, via: 'set_config' });
  if (name === '*' || ROLE_SETTINGS.has(name)) found.roleChange = true;
}

function recordFuncCall(body: Body, found: Found): void {
  const parts = nameParts(body['funcname']);
  if (parts.length === 0) return;
  const name = parts.join('.').toLowerCase();
  if (!found.functionSet.has(name)) {
    found.functionSet.add(name);
    found.functions.push(name);
  }
  const bare = (parts[parts.length - 1] ?? '').toLowerCase();
  if (hasSideEffects(bare)) found.sideEffects = true;
  if (bare === 'set_config') recordSetConfig(asArray(body['args']), found);
  else if (SQL_TEXT_FUNCTIONS[bare] !== undefined)
    recordSqlTextCall(name, bare, asArray(body['args']), found);
}

/**
 * A function that runs SQL given as a string. A constant string that parses is classified as
 * nested statements whose effects become the caller's (as with EXPLAIN ANALYZE); anything else is
 * recorded as unclassified, and is never read-only.
 */
function recordSqlTextCall(name: string, bare: string, args: unknown[], found: Found): void {
  const form = (SQL_TEXT_FUNCTIONS[bare] ?? []).find((f) => f.nargs === 0 || f.nargs === args.length);
  if (form === undefined || form.kind !== 'sql') return;
  // Functions already on the side-effect list (query_to_xml*, dblink*) are judged by name, as
  // before: their SQL is not merged, so the reasons a policy gives for them stay what they were.
  const sql = form.arg >= 0 && !hasSideEffects(bare) ? constantText(args[form.arg]) : undefined;
  const classified = typeof sql === 'string' && mergeNestedSql(sql, found);
  if (!classified) found.sideEffects = true;
  found.sqlTextCalls.push({ function: name, classified });
}

/** Classifies `sql` and adds its effects to `found`; false when it does not parse. */
function mergeNestedSql(sql: string, found: Found): boolean {
  let raws;
  try {
    raws = parseStatements(sql);
  } catch {
    return false;
  }
  if (raws.length === 0) return false;
  for (const raw of raws) {
    const node = unwrapNode(raw.stmt);
    if (node === null) return false;
    const inner = analyzeStatement(node[0], node[1], sql, '');
    for (const r of inner.relations) addRelation(found, r.schema, r.name, r.access);
    for (const f of inner.functions) {
      if (!found.functionSet.has(f)) {
        found.functionSet.add(f);
        found.functions.push(f);
      }
    }
    found.settings.push(...inner.settings);
    if (inner.role_change) found.roleChange = true;
    if (inner.ddl || inner.utility !== null) found.innerDdl = true;
    if (inner.has_where !== null) {
      found.updateOrDelete = true;
      if (!inner.has_where) found.missingWhere = true;
    }
    if (inner.prepared?.kind === 'execute' && found.executes === undefined)
      found.executes = inner.prepared.name ?? '';
    for (const c of inner.sql_text_calls ?? []) found.sqlTextCalls.push(c);
    if (!inner.read_only) found.sideEffects = true;
  }
  return true;
}

/** SET / SET LOCAL / RESET / RESET ALL / SET TRANSACTION / SET SESSION CHARACTERISTICS. */
function recordVariableSet(body: Body, found: Found): void {
  const kind = text(body['kind']);
  const name = (text(body['name']) ?? '').toLowerCase();
  const local = body['is_local'] === true;
  const push = (n: string, value: string | null, isLocal: boolean, via: 'set' | 'reset'): void => {
    found.settings.push({ name: n, value, local: isLocal, via });
    if (ROLE_SETTINGS.has(n)) found.roleChange = true;
  };
  switch (kind) {
    case 'VAR_SET_VALUE': {
      const values: string[] = [];
      let constant = true;
      for (const a of asArray(body['args'])) {
        const t = constantText(a);
        if (typeof t === 'string') values.push(t);
        else constant = false;
      }
      push(name, constant ? values.join(', ') : null, local, 'set');
      return;
    }
    case 'VAR_SET_MULTI': {
      if (name === 'transaction snapshot') {
        push('transaction_snapshot', constantText(asArray(body['args'])[0]) ?? null, true, 'set');
        return;
      }
      // SET TRANSACTION applies to the current transaction, SESSION CHARACTERISTICS to later ones.
      const session = name === 'session characteristics';
      for (const a of asArray(body['args'])) {
        const def = unwrapNode(a);
        if (def === null || def[0] !== 'DefElem') continue;
        const defname = text(def[1]['defname']) ?? '';
        push(session ? `default_${defname}` : defname, constantText(def[1]['arg']) ?? null, !session, 'set');
      }
      return;
    }
    case 'VAR_RESET':
      push(name, null, false, 'reset');
      return;
    case 'VAR_RESET_ALL':
      push('all', null, false, 'reset');
      found.roleChange = true;
      return;
    default:
      // VAR_SET_DEFAULT, VAR_SET_CURRENT and anything newer: a change to an unknown value.
      push(name, null, local, 'set');
  }
}

/** transaction_read_only as given by BEGIN/START/SET TRANSACTION options. */
function modeFromOptions(options: unknown): TransactionMode {
  let mode: TransactionMode = null;
  for (const o of asArray(options)) {
    const def = unwrapNode(o);
    if (def === null || def[0] !== 'DefElem' || def[1]['defname'] !== 'transaction_read_only') continue;
    // Several modes in one statement: any READ WRITE wins (conservative).
    if (parseBool(constantText(def[1]['arg'])) === true) mode = mode ?? 'read_only';
    else mode = 'read_write';
  }
  return mode;
}

/** A setting change that alters the transaction's or the session's read-only mode, as TransactionInfo. */
function transactionFromSettings(settings: SettingInfo[]): TransactionInfo | null {
  let result: TransactionInfo | null = null;
  for (const s of settings) {
    let kind: string;
    if (s.name === 'transaction_read_only') kind = 'SET_TRANSACTION';
    else if (s.name === 'default_transaction_read_only' || (s.name === 'all' && s.via === 'reset')) {
      kind = 'SET_SESSION_CHARACTERISTICS';
    } else if (s.name === '*') kind = 'SET_SESSION_CHARACTERISTICS';
    else continue;
    // RESET, DEFAULT, non-constant or unparsable values: assume the mode becomes read-write.
    const on = s.via === 'reset' ? null : parseBool(s.value);
    const mode: TransactionMode = on === true ? 'read_only' : 'read_write';
    if (result === null || mode === 'read_write') result = { kind, mode };
  }
  return result;
}

const READ_ONLY_TRANSACTION_KINDS: ReadonlySet<string> = new Set([
  'BEGIN',
  'START',
  'COMMIT',
  'ROLLBACK',
  'SAVEPOINT',
  'RELEASE',
  'ROLLBACK_TO',
]);

/**
 * Statements that can be read-only at all; everything else (DML, DDL, SET, CALL, DO, LOCK, LISTEN,
 * EXECUTE whose target is unknown here, ...) never is. TransactionStmt, CopyStmt, ExplainStmt and
 * PrepareStmt are decided by their own rules below.
 */
const READ_ONLY_CANDIDATES: ReadonlySet<string> = new Set([
  'SelectStmt',
  'VariableShowStmt',
  'DeallocateStmt',
  'DeclareCursorStmt',
  'FetchStmt',
  'ClosePortalStmt',
]);

function copyInfo(body: Body): CopyInfo {
  const program = body['is_program'] === true;
  const filename = text(body['filename']);
  return {
    direction: body['is_from'] === true ? 'from' : 'to',
    stdio: !program && filename === null,
    program,
    filename: program ? null : filename,
    query: body['query'] !== undefined,
  };
}

function preparedInfo(node: string, body: Body, found: Found): PreparedInfo | null {
  switch (node) {
    case 'ExecuteStmt':
      return { kind: 'execute', name: text(body['name']) };
    case 'DeallocateStmt':
      return { kind: 'deallocate', name: body['isall'] === true ? null : text(body['name']) };
    case 'DiscardStmt': {
      const target = body['target'];
      return target === 'DISCARD_ALL' || target === 'DISCARD_PLANS' ? { kind: 'discard', name: null } : null;
    }
    default:
      return found.executes === undefined ? null : { kind: 'execute', name: found.executes };
  }
}

/** Relations as seen by a statement that mentions but does not execute another one. */
function readProjection(relations: RelationRef[]): RelationRef[] {
  const seen = new Set<string>();
  const out: RelationRef[] = [];
  for (const r of relations) {
    const key = `${r.schema ?? ''}\u0000${r.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ schema: r.schema, name: r.name, access: 'read' });
  }
  return out;
}

/** EXPLAIN runs the statement only with ANALYZE (unless ANALYZE is explicitly false). */
function explainAnalyzes(body: Body): boolean {
  for (const o of asArray(body['options'])) {
    const def = unwrapNode(o);
    if (def === null || def[0] !== 'DefElem') continue;
    const n = def[1]['defname'];
    if (n !== 'analyze' && n !== 'analyse') continue;
    if (def[1]['arg'] === undefined) return true;
    return parseBool(constantText(def[1]['arg'])) !== false;
  }
  return false;
}

/** UTF-8 byte range of a string (libpg-query locations are byte offsets). */
export function sliceBytes(s: string, start: number, end?: number): string {
  if (Buffer.byteLength(s, 'utf8') === s.length) return s.slice(start, end);
  return Buffer.from(s, 'utf8').subarray(start, end).toString('utf8');
}

/** The text after `PREPARE name [ (types) ] AS`. */
function preparedStatementText(sql: string): string {
  const tokens = scanTokens(sql);
  let depth = 0;
  for (let i = 2; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === undefined) break;
    if (t.text === '(') depth++;
    else if (t.text === ')') depth--;
    else if (depth === 0 && t.keywordKind > 0 && t.text.toUpperCase() === 'AS') {
      const next = tokens[i + 1];
      if (next === undefined) break;
      return sliceBytes(sql, next.start).trim();
    }
  }
  throw new Error('cannot locate the statement of PREPARE');
}

/**
 * Classifies one statement. `node`/`body` is the unwrapped top-level node, `sql` the statement's
 * own text and `fingerprint` its libpg-query fingerprint.
 */
export function analyzeStatement(node: string, body: Body, sql: string, fingerprint: string): StatementInfo {
  if (node === 'ExplainStmt') return analyzeExplain(body, sql, fingerprint);
  if (node === 'PrepareStmt') return analyzePrepare(body, sql, fingerprint);

  const kind = statementKind(node, body);
  const found = newFound();
  walk(node, body, found);

  let transaction: TransactionInfo | null = null;
  let copy: CopyInfo | null = null;
  let readOnly = READ_ONLY_CANDIDATES.has(node);
  if (node === 'TransactionStmt') {
    const k = (text(body['kind']) ?? '').replace(/^TRANS_STMT_/, '');
    transaction = { kind: k, mode: modeFromOptions(body['options']) };
    readOnly = READ_ONLY_TRANSACTION_KINDS.has(k) && transaction.mode !== 'read_write';
  } else if (node === 'VariableSetStmt' && body['kind'] === 'VAR_SET_MULTI') {
    const name = text(body['name']);
    if (name === 'TRANSACTION')
      transaction = { kind: 'SET_TRANSACTION', mode: modeFromOptions(body['args']) };
    else if (name === 'SESSION CHARACTERISTICS') {
      transaction = { kind: 'SET_SESSION_CHARACTERISTICS', mode: modeFromOptions(body['args']) };
    }
  } else if (node === 'CopyStmt') {
    copy = copyInfo(body);
    readOnly = copy.direction === 'to' && copy.stdio;
  } else if (node === 'DiscardStmt' && body['target'] === 'DISCARD_ALL') {
    // DISCARD ALL includes SET SESSION AUTHORIZATION DEFAULT and RESET ALL.
    found.settings.push({ name: 'all', value: null, local: false, via: 'reset' });
    found.roleChange = true;
  }
  if (transaction === null) transaction = transactionFromSettings(found.settings);

  const ddl = kind.ddl || found.createsTable || found.innerDdl;
  readOnly =
    readOnly &&
    !ddl &&
    !found.writes &&
    !found.sideEffects &&
    !found.roleChange &&
    found.settings.length === 0 &&
    found.executes === undefined;

  return {
    command: kind.command,
    node,
    sql,
    fingerprint,
    relations: found.relations,
    functions: found.functions,
    has_where: found.updateOrDelete ? !found.missingWhere : null,
    read_only: readOnly,
    ddl,
    role_change: found.roleChange,
    utility: kind.utility,
    copy,
    transaction,
    prepared: preparedInfo(node, body, found),
    settings: found.settings,
    ...(found.sqlTextCalls.length > 0 ? { sql_text_calls: found.sqlTextCalls } : {}),
  };
}

function innerNode(body: Body): [string, Body] {
  const inner = unwrapNode(body['query']);
  if (inner === null) throw new Error('statement without an inner query');
  return inner;
}

/**
 * EXPLAIN ANALYZE executes its statement: the effects are the inner statement's. Plain EXPLAIN only
 * plans it: relations are reported as read, and it is read-only only when the inner one is.
 */
function analyzeExplain(body: Body, sql: string, fingerprint: string): StatementInfo {
  const [node, innerBody] = innerNode(body);
  const inner = analyzeStatement(node, innerBody, sql, fingerprint);
  if (explainAnalyzes(body)) {
    return { ...inner, command: 'EXPLAIN', node: 'ExplainStmt', utility: inner.utility ?? 'explain' };
  }
  return wrapper('EXPLAIN', 'ExplainStmt', sql, fingerprint, inner, 'explain', null);
}

/** PREPARE runs nothing; its inner statement is classified for EXECUTE to be judged by. */
function analyzePrepare(body: Body, sql: string, fingerprint: string): StatementInfo {
  const [node, innerBody] = innerNode(body);
  const innerSql = preparedStatementText(sql);
  const inner = analyzeStatement(node, innerBody, innerSql, fingerprintStatement(innerSql));
  return wrapper('PREPARE', 'PrepareStmt', sql, fingerprint, inner, 'prepare', {
    kind: 'prepare',
    name: text(body['name']),
    inner,
  });
}

/**
 * A statement that runs another one without its effects (plain EXPLAIN, PREPARE): the inner
 * statement's relations (as reads), functions and read-only fact.
 */
function wrapper(
  command: string,
  node: string,
  sql: string,
  fingerprint: string,
  inner: StatementInfo,
  utility: string,
  prepared: PreparedInfo | null,
): StatementInfo {
  return {
    command,
    node,
    sql,
    fingerprint,
    relations: readProjection(inner.relations),
    functions: inner.functions,
    has_where: null,
    read_only: inner.read_only,
    ddl: false,
    role_change: false,
    utility,
    copy: null,
    transaction: null,
    prepared,
    settings: [],
  };
}
