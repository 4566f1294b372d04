import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import YAML, { LineCounter } from 'yaml';
import type { z } from 'zod';
import { deepFreeze } from '../sql/frozen';
import { ConfigError } from './config-error';
import { tryParseHostPort } from './host-port';
import { type Config, configSchema, FILE_KEYS, leafKind, SECRET_KEYS } from './schema';

/** Command-line overrides, as typed on the command line. */
export interface FlagOverrides {
  listen?: string | undefined;
  upstream?: string | undefined;
  bundle?: string | undefined;
  adminListen?: string | undefined;
  workers?: string | undefined;
}

export interface LoadConfigOptions {
  /** YAML config file; when absent, `PGWARD_CONFIG` from `env` is used if set. */
  file?: string | undefined;
  /** Environment to read `PGWARD_*` variables from; defaults to process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  flags?: Partial<FlagOverrides> | undefined;
  /**
   * Validate without touching the files the config names (TLS keys, token files, …): for CI, where
   * they exist only in the cluster (Secrets mounted into the pod). Types, ranges, unknown keys and
   * cross-field rules are still checked.
   */
  offline?: boolean | undefined;
}

/** One value from one source, at a path of YAML keys. `source` reads like "env PGWARD_LISTEN". */
interface Entry {
  path: string[];
  value: unknown;
  source: string;
}

const FLAG_KEYS: Record<keyof FlagOverrides, { path: string[]; flag: string }> = {
  listen: { path: ['listen'], flag: '--listen' },
  upstream: { path: ['upstream', 'address'], flag: '--upstream' },
  bundle: { path: ['policy', 'bundle'], flag: '--bundle' },
  adminListen: { path: ['admin', 'listen'], flag: '--admin-listen' },
  workers: { path: ['cluster', 'workers'], flag: '--workers' },
};

/** Named environment variables; taken verbatim (no YAML parsing). They override the generic form. */
const ENV_KEYS: Record<string, string[]> = {
  PGWARD_LISTEN: ['listen'],
  PGWARD_UPSTREAM: ['upstream', 'address'],
  PGWARD_BUNDLE: ['policy', 'bundle'],
  PGWARD_ADMIN_LISTEN: ['admin', 'listen'],
  PGWARD_ADMIN_TOKEN: ['admin', 'token'],
  PGWARD_LOG_LEVEL: ['log', 'level'],
};

export const CONFIG_FILE_ENV = 'PGWARD_CONFIG';
const GENERIC_PREFIX = 'PGWARD__';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** Own-property assignment that cannot reach a prototype, even for a key named "__proto__". */
function put(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function envEntries(env: NodeJS.ProcessEnv): Entry[] {
  const generic: Entry[] = [];
  const named: Entry[] = [];
  for (const name of Object.keys(env).sort()) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const source = `env ${name}`;
    const namedPath = hasOwn(ENV_KEYS, name) ? ENV_KEYS[name] : undefined;
    if (namedPath) {
      named.push({ path: namedPath, value: raw, source });
    } else if (name.startsWith(GENERIC_PREFIX)) {
      const path = name
        .slice(GENERIC_PREFIX.length)
        .split('__')
        .map((s) => s.toLowerCase());
      if (path.some((s) => s === '')) {
        throw new ConfigError('', `environment variable ${name}: expected PGWARD__SECTION__KEY`);
      }
      generic.push(...flatten(envValue(path, raw, source), path, source));
    }
  }
  return [...generic, ...named];
}

/** A generic env value is a YAML scalar (or flow collection), except for string keys, taken verbatim. */
function envValue(path: string[], raw: string, source: string): unknown {
  const kind = leafKind(path);
  if (kind === 'string' || kind === 'enum') return raw;
  try {
    return YAML.parse(raw);
  } catch {
    throw new ConfigError(path.join('.'), 'cannot parse the value as YAML', source);
  }
}

function flagEntries(flags: Partial<FlagOverrides>): Entry[] {
  const out: Entry[] = [];
  for (const k of Object.keys(FLAG_KEYS) as (keyof FlagOverrides)[]) {
    const v = flags[k];
    // --workers is a number; the schema reports anything else with the flag's name.
    const value = k === 'workers' && v !== undefined && /^[0-9]+$/.test(v) ? Number(v) : v;
    if (value !== undefined)
      out.push({ path: FLAG_KEYS[k].path, value, source: `flag ${FLAG_KEYS[k].flag}` });
  }
  return out;
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

function readYamlFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError('', `cannot read config file ${file}: ${fsReason(code)}`);
  }
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const pos = lineCounter.linePos(problem.pos[0]);
    const reason = problem.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? problem.code;
    throw new ConfigError('', `${file}:${pos.line}:${pos.col}: YAML syntax error: ${reason}`);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ConfigError('', `${file}: ${(e as Error).message.split('\n')[0] ?? 'invalid YAML'}`);
  }
  if (data === null || data === undefined) return {};
  if (!isPlainObject(data)) {
    throw new ConfigError('', `${file}: expected a mapping at the top level, got ${describeType(data)}`);
  }
  return data;
}

/** Splits a value into one entry per leaf, so that every key records its own source. */
function flatten(value: unknown, path: string[], source: string, out: Entry[] = []): Entry[] {
  if (!isPlainObject(value)) {
    // A section written with nothing under it (`tls:` with every key commented out) is empty.
    const empty = value === null && path.length > 0 && leafKind(path) === 'object';
    out.push({ path, value: empty ? {} : value, source });
    return out;
  }
  const keys = Object.keys(value);
  if (keys.length === 0 && path.length > 0) out.push({ path, value: {}, source });
  for (const k of keys) flatten(value[k], [...path, k], source, out);
  return out;
}

/** Applies entries in order (later wins) and records where every node came from. */
function merge(entries: Entry[]): { data: Record<string, unknown>; sources: Map<string, string> } {
  const data: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const { path, value, source } of entries) {
    let node = data;
    for (let i = 0; i < path.length - 1; i++) {
      const k = path[i] as string;
      sources.set(path.slice(0, i + 1).join('.'), source);
      const next = hasOwn(node, k) ? node[k] : undefined;
      if (isPlainObject(next)) {
        node = next;
      } else {
        const fresh: Record<string, unknown> = {};
        put(node, k, fresh);
        node = fresh;
      }
    }
    const last = path[path.length - 1] as string;
    sources.set(path.join('.'), source);
    const existing = hasOwn(node, last) ? node[last] : undefined;
    if (isPlainObject(value) && isPlainObject(existing)) continue;
    put(node, last, value);
  }
  return { data, sources };
}

/**
 * Where the value at a dotted key came from: the nearest recorded key at or above it (list items take
 * their list's source); keys absent from every source hold their default.
 */
function sourceOf(sources: Map<string, string>, data: unknown, key: string): string {
  const path = key.split('.');
  if (valueAt(data, path) === undefined) return 'default';
  for (let n = path.length; n > 0; n--) {
    const s = sources.get(path.slice(0, n).join('.'));
    if (s !== undefined) return s;
  }
  return 'default';
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let v = data;
  for (const k of path) {
    if (typeof v !== 'object' || v === null || !hasOwn(v, k as string)) return undefined;
    v = (v as Record<string, unknown>)[k as string];
  }
  return v;
}

function describeValue(v: unknown, secret: boolean): string {
  if (secret || (typeof v === 'object' && v !== null)) return describeType(v);
  if (v === undefined) return 'nothing';
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function issueToError(issue: z.core.$ZodIssue, data: unknown, sources: Map<string, string>): ConfigError {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const key = [...path, issue.keys[0] ?? '?'].join('.');
    return new ConfigError(key, 'unknown key', sourceOf(sources, data, key));
  }
  const key = path.join('.');
  const value = valueAt(data, issue.path);
  const expected =
    issue.code === 'invalid_type' && !issue.message.startsWith('expected')
      ? `expected ${issue.expected}`
      : issue.message;
  return new ConfigError(
    key,
    `${expected}, got ${describeValue(value, SECRET_KEYS.has(key) || key.endsWith('.token'))}`,
    sourceOf(sources, data, key),
  );
}

type Parsed = z.output<typeof configSchema>;

/** Checks that involve more than one key; the first problem found, or undefined. */
function crossCheck(c: Parsed): { key: string; reason: string } | undefined {
  const pair = (prefix: string, a: { cert_file?: string | undefined; key_file?: string | undefined }) => {
    if (a.cert_file !== undefined && a.key_file === undefined) {
      return { key: `${prefix}.cert_file`, reason: `set without ${prefix}.key_file` };
    }
    if (a.key_file !== undefined && a.cert_file === undefined) {
      return { key: `${prefix}.key_file`, reason: `set without ${prefix}.cert_file` };
    }
    return undefined;
  };
  const oneOfTwo = (a: string, aSet: boolean, b: string, bSet: boolean) =>
    aSet && bSet ? { key: b, reason: `set together with ${a}; use one of them` } : undefined;

  const up = c.upstream.tls;
  const checks: (() => { key: string; reason: string } | undefined)[] = [
    () => pair('tls', c.tls),
    () =>
      c.tls.require && c.tls.cert_file === undefined
        ? { key: 'tls.require', reason: 'requires tls.cert_file and tls.key_file' }
        : undefined,
    () =>
      c.tls.ca_file !== undefined && c.tls.cert_file === undefined
        ? {
            key: 'tls.ca_file',
            reason: 'verifying client certificates requires tls.cert_file and tls.key_file',
          }
        : undefined,
    () =>
      (up.mode === 'verify-ca' || up.mode === 'verify-full') && up.ca_file === undefined
        ? { key: 'upstream.tls.mode', reason: `${up.mode} requires upstream.tls.ca_file` }
        : undefined,
    () => pair('upstream.tls', up),
    () => {
      if (up.mode !== 'disable') return undefined;
      const set = (['ca_file', 'cert_file', 'key_file', 'servername'] as const).find(
        (k) => up[k] !== undefined,
      );
      return set && { key: `upstream.tls.${set}`, reason: 'set but upstream.tls.mode is disable' };
    },
    () => pair('admin.tls', c.admin.tls),
    () =>
      oneOfTwo(
        'admin.token',
        c.admin.token !== undefined,
        'admin.token_file',
        c.admin.token_file !== undefined,
      ),
    () =>
      oneOfTwo(
        'policy.bearer_token',
        c.policy.bearer_token !== undefined,
        'policy.bearer_token_file',
        c.policy.bearer_token_file !== undefined,
      ),
    () =>
      oneOfTwo(
        'policy.signing.key',
        c.policy.signing.key !== undefined,
        'policy.signing.key_file',
        c.policy.signing.key_file !== undefined,
      ),
    () =>
      oneOfTwo(
        'cluster.peer_secret',
        c.cluster.peer_secret !== undefined,
        'cluster.peer_secret_file',
        c.cluster.peer_secret_file !== undefined,
      ),
    () =>
      c.cluster.peer_id >= 2 ** c.cluster.peer_bits
        ? { key: 'cluster.peer_id', reason: `does not fit in cluster.peer_bits (${c.cluster.peer_bits})` }
        : undefined,
    () =>
      (c.cluster.peers.length > 0 || c.cluster.peer_listen !== undefined) &&
      c.cluster.peer_secret === undefined &&
      c.cluster.peer_secret_file === undefined
        ? { key: 'cluster.peers', reason: 'peering requires cluster.peer_secret or cluster.peer_secret_file' }
        : undefined,
    () =>
      c.policy.signing.verify && c.policy.signing.key === undefined && c.policy.signing.key_file === undefined
        ? { key: 'policy.signing.verify', reason: 'requires policy.signing.key or policy.signing.key_file' }
        : undefined,
    () =>
      c.policy.poll_min_delay_s > c.policy.poll_max_delay_s
        ? {
            key: 'policy.poll_min_delay_s',
            reason: `must not exceed policy.poll_max_delay_s (${c.policy.poll_max_delay_s})`,
          }
        : undefined,
    () =>
      c.audit.sink === 'file' && c.audit.file.path === undefined
        ? { key: 'audit.sink', reason: 'file requires audit.file.path' }
        : undefined,
    () =>
      c.decision_log.enabled && c.decision_log.sink === 'file' && c.decision_log.file.path === undefined
        ? { key: 'decision_log.sink', reason: 'file requires decision_log.file.path' }
        : undefined,
    () =>
      c.statement_log.enabled && c.statement_log.sink === 'file' && c.statement_log.file.path === undefined
        ? { key: 'statement_log.sink', reason: 'file requires statement_log.file.path' }
        : undefined,
    () => {
      const dl = c.decision_log.decision_logs;
      if (dl === undefined) return undefined;
      if (!c.decision_log.enabled)
        return { key: 'decision_log.decision_logs', reason: 'requires decision_log.enabled: true' };
      if (!Object.prototype.hasOwnProperty.call(c.decision_log.services, dl.service))
        return {
          key: 'decision_log.decision_logs.service',
          reason: `no service "${dl.service}" in decision_log.services`,
        };
      if (dl.reporting.min_delay_seconds > dl.reporting.max_delay_seconds)
        return {
          key: 'decision_log.decision_logs.reporting.min_delay_seconds',
          reason: 'must not exceed max_delay_seconds',
        };
      const bearer = c.decision_log.services[dl.service]?.credentials.bearer;
      return bearer && (bearer.token === undefined) === (bearer.token_path === undefined)
        ? {
            key: `decision_log.services.${dl.service}.credentials.bearer`,
            reason: 'needs exactly one of token, token_path',
          }
        : undefined;
    },
    () => {
      if (!c.admin.enabled) return undefined;
      const a = tryParseHostPort(c.admin.listen);
      const l = tryParseHostPort(c.listen);
      return a.ok &&
        l.ok &&
        a.value.port !== 0 &&
        a.value.port === l.value.port &&
        a.value.host === l.value.host
        ? { key: 'admin.listen', reason: `same address as listen (${c.listen})` }
        : undefined;
    },
  ];
  for (const check of checks) {
    const problem = check();
    if (problem) return problem;
  }
  return undefined;
}

function fsReason(code: string): string {
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return code;
  }
}

function checkFiles(c: Parsed, data: unknown, sources: Map<string, string>): void {
  for (const key of FILE_KEYS) {
    const file = valueAt(c, key.split('.'));
    if (typeof file !== 'string') continue;
    let reason: string | undefined;
    try {
      if (statSync(file).isDirectory()) reason = 'is a directory';
      else accessSync(file, constants.R_OK);
    } catch (e) {
      reason = fsReason((e as NodeJS.ErrnoException).code ?? 'error');
    }
    if (reason !== undefined) {
      throw new ConfigError(
        key,
        `cannot read ${JSON.stringify(file)}: ${reason}`,
        sourceOf(sources, data, key),
      );
    }
  }
}

/**
 * Builds the configuration from defaults < `PGWARD_*` environment < YAML file < flags, validates it
 * (types, ranges, unknown keys, cross-field rules, readable files) and returns it deeply frozen.
 * Throws ConfigError with a one-line message naming the key and its source.
 */
export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? (env[CONFIG_FILE_ENV] || undefined);
  const entries: Entry[] = [...envEntries(env)];
  if (file !== undefined) entries.push(...flatten(readYamlFile(file), [], `file ${file}`));
  entries.push(...flagEntries(opts.flags ?? {}));
  const { data, sources } = merge(entries);

  const result = configSchema.safeParse(data);
  if (!result.success) {
    const issues = result.error.issues;
    const first = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0];
    if (!first) throw new ConfigError('', 'invalid configuration');
    throw issueToError(first, data, sources);
  }
  const parsed = result.data;
  const problem = crossCheck(parsed);
  if (problem) throw new ConfigError(problem.key, problem.reason, sourceOf(sources, data, problem.key));
  if (opts.offline !== true) checkFiles(parsed, data, sources);
  return deepFreeze(parsed) as Config;
}

export type CheckConfigResult = { ok: true; config: Config } | { ok: false; error: ConfigError };

/**
 * Validates one config file for `pgward check-config FILE`. The file is checked on its own (defaults
 * plus the file) unless an environment is passed. `offline`: the files it names are not opened.
 */
export function checkConfigFile(
  path: string,
  env: NodeJS.ProcessEnv = {},
  opts: { offline?: boolean } = {},
): CheckConfigResult {
  try {
    return { ok: true, config: loadConfig({ file: path, env, offline: opts.offline }) };
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, error: e };
    throw e;
  }
}
