/**
 * SIGHUP: which configuration keys changed, which of them take effect at once, and which need a
 * restart (they stay at their old value until then, and the log says so by name).
 */
import type { Config } from '../config';

/**
 * Keys (exact, or a section ending in '.') applied on reload. New limits apply to connections
 * accepted from then on; a new bundle source is loaded (and must pass) before it replaces the
 * active bundle.
 */
export const RELOADABLE_KEYS: readonly string[] = [
  'log.level',
  'limits.max_clients',
  'limits.max_unauthenticated',
  'limits.login_timeout_ms',
  'limits.max_message_bytes',
  'limits.shutdown_delay_ms',
  'limits.shutdown_timeout_ms',
  'limits.shutdown_cancel_wait_ms',
  'policy.bundle',
  'policy.watch',
  'policy.watch_debounce_ms',
  'policy.poll_min_delay_s',
  'policy.poll_max_delay_s',
  'policy.bearer_token',
  'policy.bearer_token_file',
  'policy.signing.',
  // The audit log is reopened with the new settings (sink, file, redaction, fail_closed); the
  // redaction also applies to the decision and statement logs at once.
  'audit.',
];

export interface ConfigReloadResult {
  /** Changed keys now in effect. */
  applied: string[];
  /** Changed keys that keep their old value until the next restart. */
  restart_required: string[];
}

export interface ConfigReloadPlan extends ConfigReloadResult {
  /** The configuration in effect after the reload: new values for applied keys, old for the rest. */
  merged: Config;
}

export function isReloadable(key: string): boolean {
  return RELOADABLE_KEYS.some((k) => (k.endsWith('.') ? key.startsWith(k) : key === k));
}

function leaves(v: unknown, prefix: string, out: Map<string, string>): Map<string, string> {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) leaves(x, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(v) ?? 'undefined');
  }
  return out;
}

function setAt(o: Record<string, unknown>, path: string[], value: unknown): void {
  let node = o;
  for (const k of path.slice(0, -1)) {
    const next = node[k];
    if (typeof next !== 'object' || next === null) node[k] = {};
    node = node[k] as Record<string, unknown>;
  }
  const last = path[path.length - 1] as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
}

function valueAt(o: unknown, path: string[]): unknown {
  let v = o;
  for (const k of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

export function planConfigReload(current: Config, next: Config): ConfigReloadPlan {
  const a = leaves(current, '', new Map());
  const b = leaves(next, '', new Map());
  const changed = [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort();
  const applied = changed.filter(isReloadable);
  const restart_required = changed.filter((k) => !isReloadable(k));
  const merged = structuredClone(current) as unknown as Record<string, unknown>;
  for (const k of applied) {
    const path = k.split('.');
    setAt(merged, path, structuredClone(valueAt(next, path)));
  }
  return { applied, restart_required, merged: merged as unknown as Config };
}
