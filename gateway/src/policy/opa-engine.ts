/**
 * In-process evaluation of a Rego policy compiled to WebAssembly (@open-policy-agent/opa-wasm),
 * the hot-swappable active engine, and the reload path: build new, smoke-test, swap one reference.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { loadPolicy, loadPolicySync, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { ErrorCodes, PgwardError, type ErrorCode } from '../errors';
import { loadBundle, type LoadBundleOptions, type LoadedBundle } from './bundle';
import { denyBody, type DecisionBody, type ParsedDecision } from './decision';
import { buildQueryInput, buildStartupInput } from './input';
import { inputJson, inputKey } from './input-json';
import { parseInputPaths } from './input-paths';
import { evaluatedInput, pathTrie, readsBindValues, type PathNode } from './input-project';
import { LeafCache, leafPlan, UNKEYABLE } from './leaf-cache';
import { WasmEvaluator } from './wasm-eval';
import { CacheGate } from './cache-gate';
import { GenerationalCache } from './generational-cache';

export { GenerationalCache };
import type { BundleInfo, ConnectionInfo, Decision, InputDocument, PolicyEngine } from './types';

/** A Decision plus the detail of a fail-closed error, for logs only (never sent to a client). */
export interface DetailedDecision extends Decision {
  error_message: string | null;
}

export interface EngineOptions {
  /** `package/rule` path, e.g. `pgward/decision`. */
  entrypoint: string;
  /** Upper bound on the policy's linear memory, in 64 KiB pages. Default 1024 (64 MiB). */
  memoryMaxPages?: number;
  /** Initial linear memory, in pages. Default 16 (1 MiB). */
  memoryInitialPages?: number;
  /** The clock of `input.time`, in milliseconds since the epoch. Default Date.now. */
  now?: () => number;
}

/** tsconfig's lib has no WebAssembly types (no DOM); the two members used here. */
interface CompiledModule {
  readonly __compiledWasmModule?: never;
}
declare const WebAssembly: { compile(bytes: Uint8Array): Promise<CompiledModule> };
interface MemoryLimits {
  initial: number;
  maximum: number;
}

const DEFAULT_MAX_PAGES = 1024;
const DEFAULT_INITIAL_PAGES = 16;

const ID_PREFIX = randomBytes(8).toString('hex');
let idCounter = 0;

/** Unique within the process, unique across processes with overwhelming probability; cheap. */
export function nextDecisionId(): string {
  idCounter += 1;
  return `${ID_PREFIX}-${idCounter}`;
}

/** performance.now(): a third of process.hrtime.bigint()'s cost, and sub-microsecond here. */
function seconds(start: number): number {
  return (performance.now() - start) / 1e3;
}

function stamp(
  body: DecisionBody,
  error: string | null,
  revision: string,
  evalSeconds: number,
): DetailedDecision {
  return {
    id: nextDecisionId(),
    allow: body.allow,
    denials: body.denials,
    reasons: body.reasons,
    alerts: body.alerts,
    sqlstate: body.sqlstate,
    session_parameters: body.session_parameters,
    error_code: body.error_code,
    revision,
    eval_seconds: evalSeconds,
    error_message: error,
  };
}

/** Whatever opa-wasm throws (strings, objects with message, RangeError from memory.grow) as text. */
export function describeThrown(err: unknown): string {
  if (typeof err === 'string') return err;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message;
  }
  try {
    return String(err);
  } catch {
    return 'unprintable error';
  }
}

function fail(code: ErrorCode, message: string): never {
  throw new PgwardError(code, message);
}

/**
 * The input paths recorded in the bundle's manifest (`metadata.pgward.input_paths`), null when
 * absent. A bundle whose data still declares `pgward.input_options` (the hand-written predecessor,
 * which blanked fields whatever the rules read) is refused.
 */
export function bundleInputPaths(bundle: LoadedBundle): string[][] | null {
  const pgward = (bundle.data as { pgward?: unknown } | null)?.pgward;
  if (typeof pgward === 'object' && pgward !== null && 'input_options' in pgward) {
    fail(
      ErrorCodes.BUNDLE_INPUT_OPTIONS,
      `bundle ${bundle.source}: data.pgward.input_options is no longer supported; remove it and rebuild ` +
        'the bundle with `make policy` or `pgward build`, which record the input paths the policy reads ' +
        'in the manifest (metadata.pgward.input_paths)',
    );
  }
  const meta = bundle.manifest.metadata?.['pgward'];
  if (meta === undefined) return null;
  try {
    if (typeof meta !== 'object' || meta === null) throw new Error('metadata.pgward is not an object');
    return parseInputPaths((meta as Record<string, unknown>)['input_paths']);
  } catch (err) {
    fail(ErrorCodes.BUNDLE_LOAD, `bundle ${bundle.source}: ${describeThrown(err)}`);
  }
}

/** Whether a Bind's parameters were built without their values (`"encoding": "omitted"`). */
function valuesOmitted(input: InputDocument): boolean {
  const params = (input.message as InputDocument['message'] | undefined)?.parameters;
  if (params === undefined) return false;
  for (const p of params) if (p.encoding === 'omitted') return true;
  return false;
}

/** The kind of a document for the cache gate: its message type. */
function messageKind(input: InputDocument): string {
  const type = (input.message as { type?: unknown } | undefined)?.type;
  return typeof type === 'string' ? type : '';
}

const DECISION_CACHE_ENTRIES = 8192;

const DECISION_CACHE_MAX_KEY = 8192;

export class OpaWasmEngine implements PolicyEngine {
  /** The instance's evaluation (through the module's exports, wasm-eval.ts). */
  private evaluator: WasmEvaluator;
  /** Instances replaced after a failed evaluation (a trap can leave the wasm heap inconsistent). */
  private recreated = 0;
  /**
   * Decisions by evaluated document (inputKey of the input cut to the bundle's input paths: the
   * JSON text, with kept connection and statement texts as numbers). A wasm policy is a pure
   * function of input and data — the SDK's builtins include one nondeterministic function,
   * `rand.intn`, and a bundle that calls it is never cached — so the same text gets the same
   * decision from the same engine; the cache lives and dies with this engine (one bundle
   * revision). Sessions repeat themselves (the same Parse text, the same Query), which is where
   * this pays. A bundle without input paths (whole document, time included) has no cache.
   */
  private readonly cache: GenerationalCache<ParsedDecision> | null;
  /**
   * The same decisions found without cutting the document nor building a key (leaf-cache.ts), for
   * bundles whose input paths allow it; documents it cannot key take `cache`.
   */
  private readonly leaves: LeafCache<ParsedDecision> | null;
  /** Which kinds of documents are worth a cache lookup now. */
  private readonly gate = new CacheGate();

  private constructor(
    private readonly module: CompiledModule,
    policy: LoadedPolicy,
    private readonly entrypointId: number,
    private readonly memory: MemoryLimits,
    private readonly loaded: LoadedBundle,
    private readonly info: BundleInfo,
    private readonly now: () => number,
  ) {
    this.evaluator = new WasmEvaluator(policy, entrypointId);
    this.paths = pathTrie(info.input_paths ?? [[]]);
    this.readsValues = readsBindValues(this.paths);
    // Without input paths the whole document is evaluated, `time` included (to the millisecond):
    // no two keys would match, so a cache would only cost.
    const uncacheable = info.input_paths === null || info.input_paths === undefined;
    this.cache =
      uncacheable || loaded.wasm.includes('rand.intn') ? null : new GenerationalCache(DECISION_CACHE_ENTRIES);
    const plan = this.cache === null ? null : leafPlan(this.paths);
    this.leaves = plan === null ? null : new LeafCache(plan, DECISION_CACHE_ENTRIES);
  }

  static async create(bundle: LoadedBundle, opts: EngineOptions): Promise<OpaWasmEngine> {
    const maximum = opts.memoryMaxPages ?? DEFAULT_MAX_PAGES;
    const initial = Math.min(opts.memoryInitialPages ?? DEFAULT_INITIAL_PAGES, maximum);
    const memory: MemoryLimits = { initial, maximum };
    let module: CompiledModule;
    let policy: LoadedPolicy;
    try {
      module = await WebAssembly.compile(bundle.wasm);
      policy = await loadPolicy(module, { ...memory });
    } catch (err) {
      fail(ErrorCodes.BUNDLE_LOAD, `cannot instantiate ${bundle.source}: ${describeThrown(err)}`);
    }
    const entrypoints = policy.entrypoints as Record<string, number>;
    const id = Object.prototype.hasOwnProperty.call(entrypoints, opts.entrypoint)
      ? entrypoints[opts.entrypoint]
      : undefined;
    if (typeof id !== 'number') {
      fail(
        ErrorCodes.BUNDLE_LOAD,
        `bundle ${bundle.source} has no entrypoint ${opts.entrypoint} (it has: ${Object.keys(entrypoints).join(', ') || 'none'})`,
      );
    }
    try {
      policy.setData(bundle.data);
    } catch (err) {
      fail(ErrorCodes.BUNDLE_LOAD, `cannot load data.json of ${bundle.source}: ${describeThrown(err)}`);
    }
    const metadata = bundle.manifest.metadata;
    const opaVersion =
      metadata !== undefined && typeof metadata['opa_version'] === 'string' ? metadata['opa_version'] : null;
    const info: BundleInfo = {
      revision: bundle.manifest.revision,
      entrypoint: opts.entrypoint,
      source: bundle.source,
      loaded_at: new Date().toISOString(),
      opa_version: opaVersion,
      input_paths: bundleInputPaths(bundle),
    };
    return new OpaWasmEngine(module, policy, id, memory, bundle, info, opts.now ?? Date.now);
  }

  bundle(): BundleInfo {
    return this.info;
  }

  /** The trie of the bundle's input paths (`true`: the whole document). */
  private readonly paths: PathNode;
  /** Whether the policy can read Bind/FunctionCall values (readsBindValues). */
  private readonly readsValues: boolean;

  /**
   * The document the policy evaluates for the full input document `input`: only the paths the
   * bundle reads, plus `input.time` when it reads it (policy/input-project.ts). `explain` shows it.
   */
  evaluatedInput(input: InputDocument): InputDocument {
    return evaluatedInput(input, this.paths, this.now);
  }

  /** Evaluations answered by the decision cache, and those that ran the policy. */
  cacheStats(): { hits: number; misses: number } {
    return { hits: this.hits, misses: this.misses };
  }

  private hits = 0;
  private misses = 0;

  /** How many times the wasm instance was rebuilt after a failed evaluation. */
  recreatedCount(): number {
    return this.recreated;
  }

  evaluate(input: InputDocument): DetailedDecision {
    const start = performance.now();
    const revision = this.info.revision;
    const cache = this.cache;
    let key: string | null = null;
    let text: string;
    if (this.readsValues && valuesOmitted(input)) {
      // Built for another bundle (a shadow bundle beside an active one that reads no values): the
      // policy would judge values it cannot see. Fail closed, visibly.
      const d = denyBody(
        ErrorCodes.POLICY_INPUT,
        'the input was built without Bind values (for a bundle that reads none), and this bundle reads them',
      );
      return stamp(d.body, d.error, revision, seconds(start));
    }
    // Documents of a kind that do not repeat skip the cache, key and lookup (cache-gate.ts).
    const gate = cache === null ? null : this.gate.enter(messageKind(input));
    const leaves = gate === null ? null : this.leaves;
    let leafKeyed = false;
    if (leaves !== null) {
      const hit = leaves.get(input);
      if (hit !== undefined && hit !== UNKEYABLE) {
        this.hits++;
        this.gate.leave(gate!, true);
        return stamp(hit.body, hit.error, revision, seconds(start));
      }
      leafKeyed = hit !== UNKEYABLE;
      if (leafKeyed) this.gate.leave(gate!, false);
    }
    try {
      const doc = evaluatedInput(input, this.paths, this.now);
      if (gate !== null && !leafKeyed) {
        key = inputKey(doc);
        if (key.length > DECISION_CACHE_MAX_KEY) key = null;
        else {
          const hit = cache!.get(key);
          if (hit !== undefined) {
            this.hits++;
            this.gate.leave(gate, true);
            return stamp(hit.body, hit.error, revision, seconds(start));
          }
        }
        this.gate.leave(gate, false);
      }
      text = inputJson(doc);
    } catch (err) {
      const d = denyBody(ErrorCodes.POLICY_INPUT, `input is not serializable: ${describeThrown(err)}`);
      return stamp(d.body, d.error, revision, seconds(start));
    }
    this.misses++;
    let parsed: ParsedDecision;
    try {
      parsed = this.evaluator.evaluate(text);
    } catch (err) {
      const message = describeThrown(err);
      const recreateError = this.recreate();
      const detail =
        recreateError === null ? message : `${message}; recreating the instance failed: ${recreateError}`;
      const d = denyBody(ErrorCodes.POLICY_EVAL, `policy evaluation failed: ${detail}`);
      return stamp(d.body, d.error, revision, seconds(start));
    }
    // Every decision the evaluator returns is deeply frozen (decisions share their lists).
    if (leafKeyed) leaves!.set(parsed);
    else if (key !== null) cache!.set(key, parsed);
    return stamp(parsed.body, parsed.error, revision, seconds(start));
  }

  /**
   * `d` (made by this engine) again, for a document equal to the one it was made for: the decision
   * cache's answer without building a key (FrameJudge keeps which documents are equal). Only when
   * the lean cache serves this bundle: its decisions are a function of the document's paths alone
   * (no `time`, no `rand.intn`, input paths recorded; see leafPlan).
   */
  again(d: Decision): DetailedDecision | null {
    if (this.leaves === null) return null;
    this.hits++;
    // Nothing is evaluated: no time to measure (two clock reads would cost more than the rest).
    return stamp(d, (d as Partial<DetailedDecision>).error_message ?? null, this.info.revision, 0);
  }

  /**
   * After a trap (out of memory, abort) the instance's heap bookkeeping may be inconsistent; a
   * fresh instance from the compiled module costs about a millisecond and is always sound.
   */
  private recreate(): string | null {
    try {
      const policy = loadPolicySync(this.module, { ...this.memory });
      policy.setData(this.loaded.data);
      this.evaluator = new WasmEvaluator(policy, this.entrypointId);
      this.recreated += 1;
      return null;
    } catch (err) {
      return describeThrown(err);
    }
  }
}

/** The one reference the sessions evaluate through; `swap` replaces it atomically. */
export class ActiveEngine implements PolicyEngine {
  private current: PolicyEngine | null;

  constructor(initial: PolicyEngine | null = null) {
    this.current = initial;
  }

  evaluate(input: InputDocument): Decision {
    const engine = this.current;
    if (engine === null) {
      const d = denyBody(ErrorCodes.POLICY_NO_BUNDLE, 'no policy bundle is loaded');
      return stamp(d.body, d.error, '', 0);
    }
    return engine.evaluate(input);
  }

  bundle(): BundleInfo | null {
    return this.current === null ? null : this.current.bundle();
  }

  again(d: Decision): Decision | null {
    const engine = this.current;
    return engine === null || engine.again === undefined ? null : engine.again(d);
  }

  /** Makes `next` the active engine and returns the previous one. */
  swap(next: PolicyEngine | null): PolicyEngine | null {
    const previous = this.current;
    this.current = next;
    return previous;
  }
}

const SMOKE_CONNECTION: ConnectionInfo = {
  id: 'pgward-smoke-test',
  client_addr: '127.0.0.1',
  client_port: 0,
  tls: { enabled: false, version: null, cipher: null, client_cert_subject: null },
  user: 'pgward_smoke_test',
  database: 'pgward_smoke_test',
  application_name: null,
  parameters: { user: 'pgward_smoke_test', database: 'pgward_smoke_test' },
  options: {},
  protocol_version: '3.0',
  authenticated: false,
  transaction_status: 'I',
};

/** Inputs every bundle must answer with a well-formed decision (allow or deny) before it goes live. */
export function smokeInputs(): InputDocument[] {
  const sql = 'SELECT 1';
  const authenticated = { ...SMOKE_CONNECTION, authenticated: true };
  return [
    buildStartupInput(SMOKE_CONNECTION),
    buildQueryInput(
      authenticated,
      sql,
      {
        statements: [
          {
            command: 'SELECT',
            node: 'SelectStmt',
            sql,
            fingerprint: '50fde20626009aba',
            relations: [],
            functions: [],
            has_where: null,
            read_only: true,
            ddl: false,
            role_change: false,
            utility: null,
            copy: null,
            transaction: null,
            prepared: null,
            settings: [],
          },
        ],
        parse_error: null,
      },
      { maxSqlBytes: 1024 },
    ),
  ];
}

/** Loads, instantiates and smoke-tests a bundle; throws PgwardError and leaves nothing behind on failure. */
export async function buildEngineFromSource(
  source: string,
  opts: EngineOptions & LoadBundleOptions,
): Promise<OpaWasmEngine> {
  const bundle = await loadBundle(source, opts);
  const engine = await OpaWasmEngine.create(bundle, opts);
  for (const input of smokeInputs()) {
    const decision = engine.evaluate(input);
    if (decision.error_code !== null) {
      fail(
        ErrorCodes.BUNDLE_SMOKE,
        `bundle ${source} failed the smoke test on ${input.message.type}: ${decision.error_code}: ${decision.error_message ?? ''}`,
      );
    }
  }
  return engine;
}
