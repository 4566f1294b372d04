import { z } from 'zod';
import { tryParseHostPort } from './host-port';

/*
 * The one configuration schema. Every issue message is the expectation only ("expected …"); the loader
 * appends the offending value and where it came from. Objects are strict: unknown keys are errors.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const MAX_INT = Number.MAX_SAFE_INTEGER;

type Unit = 'ms' | 's' | 'bytes';

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_BYTES: Record<string, number> = { B: 1, KiB, MiB, GiB, kB: 1000, KB: 1000, MB: 1e6, GB: 1e9 };

/** Converts "10s" / "256MiB" to the key's unit; undefined when the string is not a whole value in it. */
export function parseUnitString(s: string, unit: Unit): number | undefined {
  if (unit === 'bytes') {
    const m = /^([0-9]+)\s*(B|KiB|MiB|GiB|kB|KB|MB|GB)$/.exec(s.trim());
    if (!m) return undefined;
    const n = Number(m[1]) * (SIZE_BYTES[m[2] as string] as number);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  const m = /^([0-9]+)\s*(ms|s|m|h)$/.exec(s.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * (DURATION_MS[m[2] as string] as number);
  const n = unit === 'ms' ? ms : ms / 1000;
  return Number.isSafeInteger(n) ? n : undefined;
}

function describeRange(min: number, max: number): string {
  if (max === MAX_INT)
    return min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer >= ${min}`;
  return `an integer from ${min} to ${max}`;
}

const UNIT_HINT: Record<Unit, string> = {
  ms: ' (milliseconds, or a string like "10s")',
  s: ' (seconds, or a string like "30s")',
  bytes: ' (bytes, or a string like "64MiB")',
};

/** An integer in [min, max]; with a unit, strings such as "10s" or "256MiB" are accepted too. */
function int(min: number, max: number, unit?: Unit) {
  const expected = `expected ${describeRange(min, max)}${unit ? UNIT_HINT[unit] : ''}`;
  return z.unknown().transform((v, ctx): number => {
    const n = typeof v === 'string' && unit ? parseUnitString(v, unit) : v;
    if (typeof n === 'number' && Number.isSafeInteger(n) && n >= min && n <= max) return n;
    ctx.addIssue({ code: 'custom', message: expected, input: v });
    return z.NEVER;
  });
}

function ratio() {
  return z
    .number({ error: 'expected a number from 0 to 1' })
    .min(0, { error: 'expected a number from 0 to 1' })
    .max(1, {
      error: 'expected a number from 0 to 1',
    });
}

const str = () => z.string({ error: 'expected a string' }).min(1, { error: 'expected a non-empty string' });

const bool = () => z.boolean({ error: 'expected true or false' });

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `expected one of ${values.join(', ')}` });
}

function hostPort(opts: { allowPortZero: boolean; requireHost: boolean }) {
  const expected = opts.allowPortZero
    ? 'expected host:port, [ipv6]:port or :port'
    : 'expected host:port or [ipv6]:port with a port from 1 to 65535';
  return z.string({ error: expected }).refine(
    (s) => {
      const r = tryParseHostPort(s);
      if (!r.ok) return false;
      if (!opts.allowPortZero && r.value.port === 0) return false;
      return !(opts.requireHost && s.startsWith(':'));
    },
    { error: expected },
  );
}

/** A file path, or an http(s) URL (any other scheme is refused). */
function bundleRef() {
  const expected = 'expected a file path or an http(s) URL';
  return z.string({ error: expected }).refine(
    (s) => {
      if (s.length === 0) return false;
      if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(s)) return true;
      try {
        const u = new URL(s);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
      } catch {
        return false;
      }
    },
    { error: expected },
  );
}

/** An http(s) URL. */
function httpUrl() {
  const expected = 'expected an http(s) URL';
  return z.string({ error: expected }).refine(
    (s) => {
      try {
        const u = new URL(s);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
      } catch {
        return false;
      }
    },
    { error: expected },
  );
}

function section<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.strictObject(shape, { error: 'expected a mapping' }).prefault({} as never);
}

const rotatingFile = () =>
  section({
    path: str().optional(),
    max_bytes: int(1, MAX_INT, 'bytes').default(100 * MiB),
    max_files: int(1, 10_000).default(10),
  });

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const UPSTREAM_TLS_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export const SIGNING_ALGORITHMS = ['RS256', 'ES256', 'HS256'] as const;

export const configSchema = z.strictObject(
  {
    listen: hostPort({ allowPortZero: true, requireHost: false }).default('0.0.0.0:6432'),
    upstream: section({
      address: hostPort({ allowPortZero: false, requireHost: true }).default('127.0.0.1:5432'),
      connect_timeout_ms: int(1, MAX_INT, 'ms').default(5000),
      tls: section({
        mode: oneOf(UPSTREAM_TLS_MODES).default('disable'),
        ca_file: str().optional(),
        cert_file: str().optional(),
        key_file: str().optional(),
        servername: str().optional(),
      }),
    }),
    tls: section({
      cert_file: str().optional(),
      key_file: str().optional(),
      ca_file: str().optional(),
      require: bool().default(false),
      min_version: oneOf(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    }),
    admin: section({
      listen: hostPort({ allowPortZero: true, requireHost: false }).default('0.0.0.0:9432'),
      enabled: bool().default(true),
      token: str().optional(),
      token_file: str().optional(),
      tls: section({
        cert_file: str().optional(),
        key_file: str().optional(),
      }),
    }),
    policy: section({
      bundle: bundleRef().default('wasm-build/out/bundle.tar.gz'),
      entrypoint: z
        .string({ error: 'expected an entrypoint like "pgward/decision"' })
        .regex(/^[A-Za-z_][A-Za-z0-9_]*(\/[A-Za-z_][A-Za-z0-9_]*)*$/, {
          error: 'expected an entrypoint like "pgward/decision"',
        })
        .default('pgward/decision'),
      watch: bool().default(true),
      watch_debounce_ms: int(0, MAX_INT, 'ms').default(500),
      poll_min_delay_s: int(1, MAX_INT, 's').default(10),
      poll_max_delay_s: int(1, MAX_INT, 's').default(30),
      bearer_token: str().optional(),
      bearer_token_file: str().optional(),
      signing: section({
        verify: bool().default(false),
        key_file: str().optional(),
        key: str().optional(),
        algorithm: oneOf(SIGNING_ALGORITHMS).default('RS256'),
        key_id: str().default('default'),
        scope: str().optional(),
      }),
      wasm_memory_max_pages: int(2, 65_536).default(1024),
      shadow_bundle: bundleRef().optional(),
    }),
    sql: section({
      cache_entries: int(0, MAX_INT).default(10_000),
      max_sql_bytes_in_input: int(1, GiB, 'bytes').default(64 * KiB),
    }),
    limits: section({
      max_clients: int(1, MAX_INT).default(10_000),
      max_unauthenticated: int(1, MAX_INT).default(1000),
      login_timeout_ms: int(1, MAX_INT, 'ms').default(10_000),
      max_message_bytes: int(KiB, GiB, 'bytes').default(256 * MiB),
      // Startup packets are at most 10,000 bytes (PostgreSQL's MAX_STARTUP_PACKET_LENGTH); 8 is the minimum.
      max_startup_bytes: int(8, 10_000, 'bytes').default(10_000),
      // After SIGTERM: not ready but still accepting (endpoint propagation), then drain up to the
      // timeout, then cancel what still runs and wait for the server to confirm (lifecycle/drain.ts).
      shutdown_delay_ms: int(0, MAX_INT, 'ms').default(5000),
      shutdown_timeout_ms: int(0, MAX_INT, 'ms').default(30_000),
      shutdown_cancel_wait_ms: int(0, MAX_INT, 'ms').default(5000),
      max_pipeline_messages: int(1, MAX_INT).default(100_000),
    }),
    // Worker processes and peered replicas (docs/operations.md, "Workers and peers").
    cluster: section({
      // 0: the CPUs the process may use (os.availableParallelism()); 1: one process, no primary.
      workers: int(0, 256).default(0),
      // The first peer_bits bits of every cancel key name the replica (cluster/cancel-key.ts); the
      // same on every peer. 0: not peered.
      peer_bits: int(0, 8).default(0),
      peer_id: int(0, 255).default(0),
      // Where this replica accepts cancels forwarded by its peers (HMAC-authenticated).
      peer_listen: hostPort({ allowPortZero: true, requireHost: false }).optional(),
      // host:port of every peer (this replica may be among them); names are resolved at each use,
      // every address they resolve to gets the forward (a headless Service's DNS name).
      peers: z
        .array(hostPort({ allowPortZero: false, requireHost: true }), {
          error: 'expected a list of host:port',
        })
        .default([]),
      peer_secret: str().optional(),
      peer_secret_file: str().optional(),
      peer_timeout_ms: int(1, MAX_INT, 'ms').default(2000),
    }),
    log: section({
      level: oneOf(LOG_LEVELS).default('info'),
    }),
    audit: section({
      sink: oneOf(['stdout', 'file', 'none']).default('stdout'),
      file: rotatingFile(),
      // One switch for the audit log, the statement log and the decision log (docs/audit.md).
      redact: section({
        parameters: bool().default(true),
        literals: bool().default(true),
      }),
      fail_closed: bool().default(false),
      max_frame_bytes: int(256, 64 * MiB, 'bytes').default(16 * KiB),
    }),
    decision_log: section({
      enabled: bool().default(false),
      sample_rate: ratio().default(1),
      sink: oneOf(['stdout', 'file', 'none']).default('stdout'),
      file: rotatingFile(),
      // OPA's own configuration shape (services + decision_logs), for uploads to an OPA-compatible
      // decision log service. https://www.openpolicyagent.org/docs/latest/configuration/
      services: z
        .record(
          z
            .string()
            .regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected a service name of letters, digits, _ . -' }),
          z.strictObject(
            {
              url: httpUrl(),
              headers: z.record(z.string(), z.string({ error: 'expected a string' })).default({}),
              credentials: section({
                bearer: z
                  .strictObject(
                    {
                      token: str().optional(),
                      token_path: str().optional(),
                      scheme: str().default('Bearer'),
                    },
                    { error: 'expected a mapping' },
                  )
                  .optional(),
              }),
              response_header_timeout_seconds: int(1, 3600, 's').default(10),
            },
            { error: 'expected a mapping' },
          ),
          { error: 'expected a mapping of service names' },
        )
        .default({}),
      decision_logs: z
        .strictObject(
          {
            service: str(),
            resource: str().default('/logs'),
            reporting: section({
              buffer_size_limit_bytes: int(KiB, GiB, 'bytes').default(32 * MiB),
              upload_size_limit_bytes: int(KiB, 64 * MiB, 'bytes').default(32 * KiB),
              min_delay_seconds: int(1, 86_400, 's').default(5),
              max_delay_seconds: int(1, 86_400, 's').default(10),
            }),
          },
          { error: 'expected a mapping' },
        )
        .optional(),
    }),
    statement_log: section({
      enabled: bool().default(false),
      sink: oneOf(['stdout', 'file']).default('stdout'),
      file: rotatingFile(),
      max_buffered_bytes: int(KiB, GiB, 'bytes').default(8 * MiB),
    }),
    capture: section({
      enabled: bool().default(false),
      dir: str().default('.tmp/capture'),
      users: z.array(str(), { error: 'expected a list of strings' }).default([]),
      databases: z.array(str(), { error: 'expected a list of strings' }).default([]),
      applications: z.array(str(), { error: 'expected a list of strings' }).default([]),
      max_file_bytes: int(KiB, MAX_INT, 'bytes').default(64 * MiB),
      max_file_age_s: int(1, MAX_INT, 's').default(3600),
      redact: section({
        parameters: bool().default(true),
        literals: bool().default(true),
      }),
    }),
  },
  { error: 'expected a mapping' },
);

type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The validated, deeply frozen configuration. Property names are the YAML keys. */
export type Config = DeepReadonly<z.output<typeof configSchema>>;

/** Keys whose values are secrets: never echoed in error messages. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'admin.token',
  'policy.bearer_token',
  'policy.signing.key',
  'cluster.peer_secret',
]);

/** Keys naming files that must exist and be readable when set. */
export const FILE_KEYS = [
  'upstream.tls.ca_file',
  'upstream.tls.cert_file',
  'upstream.tls.key_file',
  'tls.cert_file',
  'tls.key_file',
  'tls.ca_file',
  'admin.token_file',
  'admin.tls.cert_file',
  'admin.tls.key_file',
  'policy.bearer_token_file',
  'policy.signing.key_file',
  'cluster.peer_secret_file',
] as const;

/**
 * The kind of value at a dotted path ('string', 'enum', 'object', 'pipe', …), or undefined when the
 * schema has no such key. Used to take string values from the environment verbatim.
 */
export function leafKind(path: readonly string[]): string | undefined {
  let s: z.core.$ZodType = configSchema;
  let i = 0;
  for (;;) {
    const def = s._zod.def as {
      type: string;
      innerType?: z.core.$ZodType;
      shape?: Record<string, z.core.$ZodType>;
    };
    if ((def.type === 'default' || def.type === 'prefault' || def.type === 'optional') && def.innerType) {
      s = def.innerType;
      continue;
    }
    if (i === path.length) return def.type;
    if (def.type !== 'object' || !def.shape) return undefined;
    const next: z.core.$ZodType | undefined = Object.prototype.hasOwnProperty.call(
      def.shape,
      path[i] as string,
    )
      ? def.shape[path[i] as string]
      : undefined;
    if (!next) return undefined;
    s = next;
    i++;
  }
}
