/**
 * Classifications are shared: the caches hand the same objects to every session, deep-frozen so
 * that nobody can change them. Frozen lists also let the policy layer keep derived forms and
 * their JSON text per object (policy/input-json.ts) instead of rebuilding them for each message.
 */
import type { StatementInfo } from './types';

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Whether a statement of the list is a PREPARE, EXECUTE or DEALLOCATE. An indexed loop: the lists
 * are frozen, and V8 walks frozen arrays with for-of, some() or every() through its generic
 * iterator (this runs for every Query, Parse and Execute).
 */
export function namesPrepared(statements: readonly StatementInfo[]): boolean {
  for (let i = 0; i < statements.length; i++) if (statements[i]!.prepared !== null) return true;
  return false;
}

/** Text-free forms of frozen statement lists. */
const textFree = new WeakMap<readonly StatementInfo[], readonly StatementInfo[]>();
/** On a shape-cache hit's list: the frozen template it was made from (a property, not a WeakMap entry, to keep the per-query cost low). */
const TEMPLATE = Symbol('pgward.template');

/** The statements without their SQL texts ("" in `sql` and in a PREPARE's inner statement). */
function strip(statements: readonly StatementInfo[]): StatementInfo[] {
  return statements.map((st) => {
    const p = st.prepared;
    const prepared = p !== null && p.inner !== undefined ? { ...p, inner: { ...p.inner, sql: '' } } : p;
    return { ...st, sql: '', prepared };
  });
}

/**
 * The statements without their SQL texts, for bundles that never read SQL text. For a frozen list
 * the result is computed once, frozen, and shared; so it is for a list registered with
 * `shareTextFree` (texts of one shape differ only in `sql`, which this removes).
 */
export function statementsWithoutText(statements: readonly StatementInfo[]): StatementInfo[] {
  const template = (statements as { [TEMPLATE]?: readonly StatementInfo[] })[TEMPLATE];
  if (template !== undefined) return statementsWithoutText(template);
  const known = textFree.get(statements);
  if (known !== undefined) return known as StatementInfo[];
  const stripped = strip(statements);
  if (!Object.isFrozen(statements)) return stripped;
  const frozen = deepFreeze(stripped);
  textFree.set(statements, frozen);
  return frozen;
}

/**
 * Records that `derived` (a shape-cache hit: the template's statements with this text's `sql`)
 * has the same text-free form as the frozen `template`.
 */
export function shareTextFree(derived: StatementInfo[], template: readonly StatementInfo[]): void {
  // A symbol-keyed property set by assignment (an inline-cached store; Object.defineProperty is a
  // runtime call on every query): JSON, Object.keys and spreads of the list never see it.
  if (Object.isFrozen(template) && !Object.isFrozen(derived))
    (derived as { [TEMPLATE]?: readonly StatementInfo[] })[TEMPLATE] = template;
}

/**
 * The frozen template a shape-cache hit's list was registered with (`shareTextFree`): the same
 * statements but for their `sql`; undefined for any other list.
 */
export function textFreeTemplate(statements: readonly StatementInfo[]): readonly StatementInfo[] | undefined {
  return (statements as { [TEMPLATE]?: readonly StatementInfo[] })[TEMPLATE];
}
