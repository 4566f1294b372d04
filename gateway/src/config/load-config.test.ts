import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes } from '../errors';
import { checkConfigFile, ConfigError, loadConfig } from './index';
import type { Config, FlagOverrides } from './index';

const dir = mkdtempSync(join(tmpdir(), 'pgward-config-'));
for (const name of ['cert.pem', 'key.pem', 'ca.pem', 'token', 'signing.pem'])
  writeFileSync(join(dir, name), 'x\n');
let n = 0;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function yamlFile(text: string): string {
  const file = join(dir, `c${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}
const f = (name: string) => join(dir, name);

/** Loads and returns the ConfigError thrown, failing the test when nothing is thrown. */
function failure(opts: Parameters<typeof loadConfig>[0]): ConfigError {
  try {
    loadConfig(opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const err = e as ConfigError;
    expect(err.message).not.toMatch(/[\r\n]/);
    expect(err.message.startsWith('config: ')).toBe(true);
    expect(err.code).toBe(ErrorCodes.CONFIG_INVALID);
    return err;
  }
  throw new Error('expected loadConfig to throw');
}

describe('defaults', () => {
  test('every default, with an empty environment and no file', () => {
    const c = loadConfig({ env: {} });
    expect(c).toEqual({
      listen: '0.0.0.0:6432',
      upstream: { address: '127.0.0.1:5432', connect_timeout_ms: 5000, tls: { mode: 'disable' } },
      tls: { require: false, min_version: 'TLSv1.2' },
      admin: { listen: '0.0.0.0:9432', enabled: true, tls: {} },
      policy: {
        bundle: 'wasm-build/out/bundle.tar.gz',
        entrypoint: 'pgward/decision',
        watch: true,
        watch_debounce_ms: 500,
        poll_min_delay_s: 10,
        poll_max_delay_s: 30,
        signing: { verify: false, algorithm: 'RS256', key_id: 'default' },
        wasm_memory_max_pages: 1024,
      },
      sql: { cache_entries: 10000, max_sql_bytes_in_input: 65536 },
      limits: {
        max_clients: 10000,
        max_unauthenticated: 1000,
        login_timeout_ms: 10000,
        max_message_bytes: 268435456,
        max_startup_bytes: 10000,
        shutdown_delay_ms: 5000,
        shutdown_timeout_ms: 30000,
        shutdown_cancel_wait_ms: 5000,
        max_pipeline_messages: 100000,
      },
      cluster: { workers: 0, peer_bits: 0, peer_id: 0, peers: [], peer_timeout_ms: 2000 },
      log: { level: 'info' },
      audit: {
        sink: 'stdout',
        file: { max_bytes: 104857600, max_files: 10 },
        redact: { parameters: true, literals: true },
        fail_closed: false,
        max_frame_bytes: 16384,
      },
      decision_log: {
        enabled: false,
        sample_rate: 1,
        sink: 'stdout',
        file: { max_bytes: 104857600, max_files: 10 },
        services: {},
      },
      statement_log: {
        enabled: false,
        sink: 'stdout',
        file: { max_bytes: 104857600, max_files: 10 },
        max_buffered_bytes: 8388608,
      },
      capture: {
        enabled: false,
        dir: '.tmp/capture',
        users: [],
        databases: [],
        applications: [],
        max_file_bytes: 67108864,
        max_file_age_s: 3600,
        redact: { parameters: true, literals: true },
      },
    });
  });

  test('an empty file and a file of only comments give the defaults', () => {
    const d = loadConfig({ env: {} });
    expect(loadConfig({ env: {}, file: yamlFile('') })).toEqual(d);
    expect(loadConfig({ env: {}, file: yamlFile('# nothing\n') })).toEqual(d);
  });

  test('a section with nothing under it is empty', () => {
    expect(loadConfig({ env: {}, file: yamlFile('tls:\nadmin:\n  tls:\n') })).toEqual(
      loadConfig({ env: {} }),
    );
  });

  test('the result is deeply frozen', () => {
    const c = loadConfig({ env: {} });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.upstream.tls)).toBe(true);
    expect(Object.isFrozen(c.capture.users)).toBe(true);
    expect(() => {
      (c.limits as { max_clients: number }).max_clients = 1;
    }).toThrow(TypeError);
    expect(() => (c.capture.users as string[]).push('x')).toThrow(TypeError);
  });

  test('a later load does not share state with an earlier one', () => {
    const a = loadConfig({ env: {}, file: yamlFile('capture: {users: [alice]}\n') });
    const b = loadConfig({ env: {} });
    expect(a.capture.users).toEqual(['alice']);
    expect(b.capture.users).toEqual([]);
  });
});

describe('precedence: defaults < env < file < flags', () => {
  const cases: {
    name: string;
    env: string;
    flag: keyof FlagOverrides;
    yaml: (v: string) => string;
    get: (c: Config) => string;
    values: [string, string, string];
  }[] = [
    {
      name: 'listen',
      env: 'PGWARD_LISTEN',
      flag: 'listen',
      yaml: (v) => `listen: "${v}"\n`,
      get: (c) => c.listen,
      values: ['127.0.0.1:1001', '127.0.0.1:1002', '127.0.0.1:1003'],
    },
    {
      name: 'upstream',
      env: 'PGWARD_UPSTREAM',
      flag: 'upstream',
      yaml: (v) => `upstream:\n  address: "${v}"\n`,
      get: (c) => c.upstream.address,
      values: ['db1:5432', 'db2:5432', 'db3:5432'],
    },
    {
      name: 'bundle',
      env: 'PGWARD_BUNDLE',
      flag: 'bundle',
      yaml: (v) => `policy:\n  bundle: "${v}"\n`,
      get: (c) => c.policy.bundle,
      values: ['env.tar.gz', 'https://bundles.example.com/file.tar.gz', '/opt/flag/bundle'],
    },
    {
      name: 'admin listen',
      env: 'PGWARD_ADMIN_LISTEN',
      flag: 'adminListen',
      yaml: (v) => `admin:\n  listen: "${v}"\n`,
      get: (c) => c.admin.listen,
      values: ['127.0.0.1:2001', '[::1]:2002', ':0'],
    },
  ];

  test.each(cases)('$name', ({ env, flag, yaml, get, values: [e, fl, fg] }) => {
    expect(get(loadConfig({ env: { [env]: e } }))).toBe(e);
    const file = yamlFile(yaml(fl));
    expect(get(loadConfig({ env: { [env]: e }, file }))).toBe(fl);
    expect(get(loadConfig({ env: {}, file }))).toBe(fl);
    expect(get(loadConfig({ env: { [env]: e }, file, flags: { [flag]: fg } }))).toBe(fg);
    expect(get(loadConfig({ env: { [env]: e }, flags: { [flag]: fg } }))).toBe(fg);
    // A flag left undefined (commander's shape for an absent option) does not override.
    expect(get(loadConfig({ env: { [env]: e }, file, flags: { [flag]: undefined } }))).toBe(fl);
  });

  test('the file overrides only the keys it sets; siblings keep env and defaults', () => {
    const file = yamlFile('upstream:\n  connect_timeout_ms: 99\n');
    const c = loadConfig({ env: { PGWARD_UPSTREAM: 'db:5432' }, file });
    expect(c.upstream).toEqual({ address: 'db:5432', connect_timeout_ms: 99, tls: { mode: 'disable' } });
  });

  test('PGWARD_CONFIG names the file when no file is given; an explicit file wins', () => {
    const a = yamlFile('listen: "127.0.0.1:1"\n');
    const b = yamlFile('listen: "127.0.0.1:2"\n');
    expect(loadConfig({ env: { PGWARD_CONFIG: a } }).listen).toBe('127.0.0.1:1');
    expect(loadConfig({ env: { PGWARD_CONFIG: a }, file: b }).listen).toBe('127.0.0.1:2');
  });

  test('named env vars for the admin token and the log level', () => {
    const c = loadConfig({ env: { PGWARD_ADMIN_TOKEN: '12345', PGWARD_LOG_LEVEL: 'debug' } });
    expect(c.admin.token).toBe('12345');
    expect(c.log.level).toBe('debug');
  });

  test('empty env values count as unset; unrelated PGWARD_ variables are ignored', () => {
    const c = loadConfig({
      env: {
        PGWARD_LISTEN: '',
        PGWARD_SOMETHING_ELSE: 'x',
        PGWARD__LIMITS__MAX_CLIENTS: '',
        constructor: 'x',
      },
    });
    expect(c.listen).toBe('0.0.0.0:6432');
    expect(c.limits.max_clients).toBe(10000);
  });
});

describe('generic environment form PGWARD__SECTION__KEY', () => {
  test('sets nested keys of every type, values parsed as YAML scalars', () => {
    const c = loadConfig({
      env: {
        PGWARD__LIMITS__MAX_CLIENTS: '500',
        PGWARD__TLS__REQUIRE: 'false',
        PGWARD__DECISION_LOG__SAMPLE_RATE: '0.25',
        PGWARD__CAPTURE__USERS: '[alice, bob]',
        PGWARD__UPSTREAM__TLS__MODE: 'prefer',
        PGWARD__POLICY__SIGNING__KEY_ID: '42',
        PGWARD__AUDIT__FILE__MAX_BYTES: '10MiB',
        PGWARD__LISTEN: '127.0.0.1:7000',
      },
    });
    expect(c.limits.max_clients).toBe(500);
    expect(c.tls.require).toBe(false);
    expect(c.decision_log.sample_rate).toBe(0.25);
    expect(c.capture.users).toEqual(['alice', 'bob']);
    expect(c.upstream.tls.mode).toBe('prefer');
    // String keys take the value verbatim, so a numeric-looking string stays a string.
    expect(c.policy.signing.key_id).toBe('42');
    expect(c.audit.file.max_bytes).toBe(10 * 1024 * 1024);
    expect(c.listen).toBe('127.0.0.1:7000');
  });

  test('the named variable wins over the generic one for the same key', () => {
    const c = loadConfig({ env: { PGWARD_LISTEN: '127.0.0.1:1', PGWARD__LISTEN: '127.0.0.1:2' } });
    expect(c.listen).toBe('127.0.0.1:1');
  });

  test('the file overrides generic env values', () => {
    const c = loadConfig({
      env: { PGWARD__LIMITS__MAX_CLIENTS: '5' },
      file: yamlFile('limits: {max_clients: 6}\n'),
    });
    expect(c.limits.max_clients).toBe(6);
  });

  test('a bad env value names the variable', () => {
    const e = failure({ env: { PGWARD__LIMITS__MAX_CLIENTS: 'abc' } });
    expect(e.key).toBe('limits.max_clients');
    expect(e.message).toBe(
      'config: limits.max_clients: expected a positive integer, got "abc" (from env PGWARD__LIMITS__MAX_CLIENTS)',
    );
    expect(failure({ env: { PGWARD_LOG_LEVEL: 'loud' } }).message).toBe(
      'config: log.level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud" (from env PGWARD_LOG_LEVEL)',
    );
  });

  test('an unknown key through the environment names the variable', () => {
    const e = failure({ env: { PGWARD__LIMITS__MAX_CLIENT: '5' } });
    expect(e.message).toBe('config: limits.max_client: unknown key (from env PGWARD__LIMITS__MAX_CLIENT)');
  });

  test('a whole section as a YAML flow mapping; each key keeps the variable as its source', () => {
    expect(loadConfig({ env: { PGWARD__LIMITS: '{max_clients: 7}' } }).limits.max_clients).toBe(7);
    expect(failure({ env: { PGWARD__LIMITS: '{max_clients: x}' } }).message).toBe(
      'config: limits.max_clients: expected a positive integer, got "x" (from env PGWARD__LIMITS)',
    );
    expect(failure({ env: { PGWARD__CAPTURE__USERS: '[a, 1]' } }).message).toBe(
      'config: capture.users.1: expected a string, got 1 (from env PGWARD__CAPTURE__USERS)',
    );
  });

  test('an empty segment is refused', () => {
    expect(failure({ env: { PGWARD__LIMITS____X: '5' } }).message).toMatch(/PGWARD__LIMITS____X/);
  });

  test('a value that is not valid YAML names the variable', () => {
    const e = failure({ env: { PGWARD__LIMITS__MAX_CLIENTS: '[1, 2' } });
    expect(e.message).toBe(
      'config: limits.max_clients: cannot parse the value as YAML (from env PGWARD__LIMITS__MAX_CLIENTS)',
    );
  });
});

describe('type and range errors', () => {
  test('the message names the key, the expectation, the value and the file', () => {
    const file = yamlFile('limits:\n  max_clients: abc\n');
    const e = failure({ env: {}, file });
    expect(e.key).toBe('limits.max_clients');
    expect(e.message).toBe(
      `config: limits.max_clients: expected a positive integer, got "abc" (from file ${file})`,
    );
  });

  test.each([
    ['limits:\n  max_clients: 0\n', 'limits.max_clients', 'expected a positive integer, got 0'],
    ['limits:\n  max_clients: 1.5\n', 'limits.max_clients', 'expected a positive integer, got 1.5'],
    ['limits:\n  max_clients: "10"\n', 'limits.max_clients', 'expected a positive integer, got "10"'],
    [
      'limits:\n  max_message_bytes: 100\n',
      'limits.max_message_bytes',
      'expected an integer from 1024 to 1073741824',
    ],
    [
      'limits:\n  max_message_bytes: 2GiB\n',
      'limits.max_message_bytes',
      'expected an integer from 1024 to 1073741824',
    ],
    [
      'limits:\n  max_startup_bytes: 10001\n',
      'limits.max_startup_bytes',
      'expected an integer from 8 to 10000',
    ],
    ['tls:\n  require: "yes"\n', 'tls.require', 'expected true or false, got "yes"'],
    ['tls:\n  require: yes\n', 'tls.require', 'expected true or false, got "yes"'],
    ['tls:\n  min_version: TLSv1.1\n', 'tls.min_version', 'expected one of TLSv1.2, TLSv1.3, got "TLSv1.1"'],
    [
      'upstream:\n  tls:\n    mode: verify\n',
      'upstream.tls.mode',
      'expected one of disable, prefer, require',
    ],
    [
      'decision_log:\n  sample_rate: 1.5\n',
      'decision_log.sample_rate',
      'expected a number from 0 to 1, got 1.5',
    ],
    ['capture:\n  users: alice\n', 'capture.users', 'expected a list of strings, got "alice"'],
    ['capture:\n  users: [alice, 3]\n', 'capture.users.1', 'expected a string, got 3'],
    ['limits: 5\n', 'limits', 'expected a mapping, got 5'],
    ['log: null\nlimits: []\n', 'limits', 'expected a mapping, got a list'],
    ['listen: null\n', 'listen', 'expected host:port, [ipv6]:port or :port, got null'],
    ['policy:\n  bundle: ftp://x/b.tar.gz\n', 'policy.bundle', 'expected a file path or an http(s) URL'],
    ['policy:\n  bundle: ""\n', 'policy.bundle', 'expected a file path or an http(s) URL, got ""'],
    ['policy:\n  entrypoint: "pgward.decision"\n', 'policy.entrypoint', 'expected an entrypoint like'],
    [
      'policy:\n  poll_min_delay_s: 1500ms\n',
      'policy.poll_min_delay_s',
      'expected a positive integer (seconds',
    ],
    [
      'log:\n  level: 3\n',
      'log.level',
      'expected one of fatal, error, warn, info, debug, trace, silent, got 3',
    ],
  ])('%j', (yaml, key, text) => {
    const e = failure({ env: {}, file: yamlFile(yaml) });
    expect(e.key).toBe(key);
    expect(e.message).toContain(`config: ${key}: ${text}`);
  });

  test('secret values are never echoed', () => {
    const e = failure({ env: {}, file: yamlFile('admin:\n  token: ""\n') });
    expect(e.message).toBe(
      `config: admin.token: expected a non-empty string, got a string (from file ${join(dir, `c${n - 1}.yaml`)})`,
    );
    const e2 = failure({ env: {}, file: yamlFile('policy:\n  signing:\n    key: [s3cret]\n') });
    expect(e2.message).not.toContain('s3cret');
  });

  test('durations and sizes accept integers and strings with units', () => {
    const c = loadConfig({
      env: {},
      file: yamlFile(
        [
          'limits:',
          '  login_timeout_ms: 10s',
          '  shutdown_timeout_ms: 2m',
          '  max_message_bytes: 64MiB',
          '  max_startup_bytes: 8KiB',
          'policy:',
          '  poll_min_delay_s: 1m',
          '  poll_max_delay_s: 1h',
          '  watch_debounce_ms: 250ms',
          'capture:',
          '  max_file_bytes: 1GB',
          '  max_file_age_s: 3600',
        ].join('\n'),
      ),
    });
    expect(c.limits.login_timeout_ms).toBe(10_000);
    expect(c.limits.shutdown_timeout_ms).toBe(120_000);
    expect(c.limits.max_message_bytes).toBe(64 * 1024 * 1024);
    expect(c.limits.max_startup_bytes).toBe(8192);
    expect(c.policy.poll_min_delay_s).toBe(60);
    expect(c.policy.poll_max_delay_s).toBe(3600);
    expect(c.policy.watch_debounce_ms).toBe(250);
    expect(c.capture.max_file_bytes).toBe(1e9);
    expect(c.capture.max_file_age_s).toBe(3600);
  });

  test('listen accepts port 0 but the upstream needs a host and a real port', () => {
    expect(loadConfig({ env: {}, flags: { listen: '127.0.0.1:0', adminListen: ':0' } }).listen).toBe(
      '127.0.0.1:0',
    );
    expect(failure({ env: {}, flags: { upstream: 'db:0' } }).message).toBe(
      'config: upstream.address: expected host:port or [ipv6]:port with a port from 1 to 65535, got "db:0" (from flag --upstream)',
    );
    expect(failure({ env: {}, flags: { upstream: ':5432' } }).key).toBe('upstream.address');
  });

  test.each(['localhost', 'localhost:99999', '::1:6432', '[::1]6432', 'a b:1', ''])('bad listen %j', (v) => {
    const e = failure({ env: {}, flags: { listen: v } });
    expect(e.key).toBe('listen');
    expect(e.message).toBe(
      `config: listen: expected host:port, [ipv6]:port or :port, got ${JSON.stringify(v)} (from flag --listen)`,
    );
  });
});

describe('unknown keys', () => {
  test('a misspelt key is named with its full path', () => {
    const file = yamlFile('upstream:\n  adress: "db:5432"\n');
    const e = failure({ env: {}, file });
    expect(e.key).toBe('upstream.adress');
    expect(e.message).toBe(`config: upstream.adress: unknown key (from file ${file})`);
  });

  test('at the top level and deep down', () => {
    expect(failure({ env: {}, file: yamlFile('listne: ":1"\n') }).key).toBe('listne');
    expect(failure({ env: {}, file: yamlFile('policy:\n  signing:\n    verfy: true\n') }).key).toBe(
      'policy.signing.verfy',
    );
    expect(failure({ env: {}, file: yamlFile('nope:\n  deeper: 1\n') }).key).toBe('nope');
  });

  test('prototype keys are plain unknown keys', () => {
    const e = failure({ env: {}, file: yamlFile('__proto__:\n  listen: ":1"\n') });
    expect(e.key).toBe('__proto__');
    expect(({} as Record<string, unknown>).listen).toBeUndefined();
    expect(failure({ env: {}, file: yamlFile('limits:\n  constructor: 1\n') }).key).toBe(
      'limits.constructor',
    );
  });
});

describe('the file itself', () => {
  test('a YAML syntax error gives one line with the line number', () => {
    const file = yamlFile('listen: ":1"\nlimits:\n  max_clients: [1, 2\n');
    const e = failure({ env: {}, file });
    expect(e.key).toBe('');
    expect(e.message).toMatch(
      new RegExp(`^config: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:[34]:\\d+: YAML syntax error: `),
    );
  });

  test('duplicate keys are an error with their line', () => {
    const file = yamlFile('listen: ":1"\nlisten: ":2"\n');
    expect(failure({ env: {}, file }).message).toBe(
      `config: ${file}:2:1: YAML syntax error: Map keys must be unique`,
    );
  });

  test('unknown tags are refused', () => {
    expect(failure({ env: {}, file: yamlFile('listen: !secret x\n') }).message).toContain(
      ':1:9: YAML syntax error',
    );
  });

  test('a top level that is not a mapping', () => {
    const file = yamlFile('- a\n- b\n');
    expect(failure({ env: {}, file }).message).toBe(
      `config: ${file}: expected a mapping at the top level, got a list`,
    );
  });

  test('a missing file', () => {
    const file = join(dir, 'missing.yaml');
    expect(failure({ env: {}, file }).message).toBe(`config: cannot read config file ${file}: no such file`);
    expect(failure({ env: { PGWARD_CONFIG: file } }).message).toContain('no such file');
  });
});

describe('cross-field checks', () => {
  const cases: [string, string, string][] = [
    [`tls:\n  cert_file: ${f('cert.pem')}\n`, 'tls.cert_file', 'set without tls.key_file'],
    [`tls:\n  key_file: ${f('key.pem')}\n`, 'tls.key_file', 'set without tls.cert_file'],
    ['tls:\n  require: true\n', 'tls.require', 'requires tls.cert_file and tls.key_file'],
    [`tls:\n  ca_file: ${f('ca.pem')}\n`, 'tls.ca_file', 'verifying client certificates requires'],
    [
      'upstream:\n  tls:\n    mode: verify-ca\n',
      'upstream.tls.mode',
      'verify-ca requires upstream.tls.ca_file',
    ],
    [
      'upstream:\n  tls:\n    mode: verify-full\n',
      'upstream.tls.mode',
      'verify-full requires upstream.tls.ca_file',
    ],
    [
      `upstream:\n  tls:\n    mode: require\n    cert_file: ${f('cert.pem')}\n`,
      'upstream.tls.cert_file',
      'set without',
    ],
    [
      `upstream:\n  tls:\n    ca_file: ${f('ca.pem')}\n`,
      'upstream.tls.ca_file',
      'set but upstream.tls.mode is disable',
    ],
    [
      `admin:\n  tls:\n    key_file: ${f('key.pem')}\n`,
      'admin.tls.key_file',
      'set without admin.tls.cert_file',
    ],
    [
      `admin:\n  token: t\n  token_file: ${f('token')}\n`,
      'admin.token_file',
      'set together with admin.token',
    ],
    [
      `policy:\n  bearer_token: t\n  bearer_token_file: ${f('token')}\n`,
      'policy.bearer_token_file',
      'set together with policy.bearer_token',
    ],
    [
      `policy:\n  signing:\n    key: k\n    key_file: ${f('signing.pem')}\n`,
      'policy.signing.key_file',
      'set together with policy.signing.key',
    ],
    ['policy:\n  signing:\n    verify: true\n', 'policy.signing.verify', 'requires policy.signing.key or'],
    ['cluster:\n  peer_bits: 2\n  peer_id: 4\n', 'cluster.peer_id', 'does not fit in cluster.peer_bits (2)'],
    ['cluster:\n  peers: ["a:6433"]\n', 'cluster.peers', 'peering requires cluster.peer_secret or'],
    [
      'cluster:\n  peer_secret: x\n  peer_secret_file: /f\n',
      'cluster.peer_secret_file',
      'set together with cluster.peer_secret',
    ],
    [
      'policy:\n  poll_min_delay_s: 60\n  poll_max_delay_s: 30\n',
      'policy.poll_min_delay_s',
      'must not exceed',
    ],
    ['audit:\n  sink: file\n', 'audit.sink', 'file requires audit.file.path'],
    [
      'decision_log:\n  enabled: true\n  sink: file\n',
      'decision_log.sink',
      'file requires decision_log.file.path',
    ],
    [
      'statement_log:\n  enabled: true\n  sink: file\n',
      'statement_log.sink',
      'file requires statement_log.file.path',
    ],
    [
      'decision_log:\n  enabled: true\n  decision_logs:\n    service: nope\n',
      'decision_log.decision_logs.service',
      'no service "nope" in decision_log.services',
    ],
    [
      'decision_log:\n  enabled: true\n  services:\n    s:\n      url: http://x\n      credentials:\n        bearer: {}\n  decision_logs:\n    service: s\n',
      'decision_log.services.s.credentials.bearer',
      'needs exactly one of token, token_path',
    ],
    [
      'decision_log:\n  enabled: true\n  services:\n    s:\n      url: http://x\n  decision_logs:\n    service: s\n    reporting:\n      min_delay_seconds: 20\n',
      'decision_log.decision_logs.reporting.min_delay_seconds',
      'must not exceed max_delay_seconds',
    ],
    [
      'decision_log:\n  services:\n    s:\n      url: http://x\n  decision_logs:\n    service: s\n',
      'decision_log.decision_logs',
      'requires decision_log.enabled: true',
    ],
    [
      'listen: "127.0.0.1:7000"\nadmin:\n  listen: "127.0.0.1:7000"\n',
      'admin.listen',
      'same address as listen',
    ],
  ];

  test("decision log upload in OPA's services/decision_logs shape, with defaults", () => {
    const c = loadConfig({
      env: {},
      file: yamlFile(
        'decision_log:\n  enabled: true\n  services:\n    acme:\n      url: https://logs.example.com/v1\n      credentials:\n        bearer:\n          token: abc\n  decision_logs:\n    service: acme\n',
      ),
    });
    expect(c.decision_log.services.acme).toEqual({
      url: 'https://logs.example.com/v1',
      headers: {},
      credentials: { bearer: { token: 'abc', scheme: 'Bearer' } },
      response_header_timeout_seconds: 10,
    });
    expect(c.decision_log.decision_logs).toEqual({
      service: 'acme',
      resource: '/logs',
      reporting: {
        buffer_size_limit_bytes: 32 * 1024 * 1024,
        upload_size_limit_bytes: 32 * 1024,
        min_delay_seconds: 5,
        max_delay_seconds: 10,
      },
    });
  });

  test('a bad service url and a bad token never echo the token', () => {
    const e = failure({
      env: {},
      file: yamlFile('decision_log:\n  services:\n    s:\n      url: ftp://x\n'),
    });
    expect(e.message).toContain('decision_log.services.s.url: expected an http(s) URL');
    const t = failure({
      env: {},
      file: yamlFile(
        'decision_log:\n  services:\n    s:\n      url: http://x\n      credentials:\n        bearer:\n          token: 42424242\n',
      ),
    });
    expect(t.message).not.toContain('42424242');
  });

  test.each(cases)('%j', (yaml, key, text) => {
    const file = yamlFile(yaml);
    const e = failure({ env: {}, file });
    expect(e.key).toBe(key);
    expect(e.message).toContain(`config: ${key}: ${text}`);
    expect(e.message).toContain(`(from file ${file})`);
  });

  test('the valid counterparts load', () => {
    const c = loadConfig({
      env: {},
      file: yamlFile(
        [
          'tls:',
          `  cert_file: ${f('cert.pem')}`,
          `  key_file: ${f('key.pem')}`,
          `  ca_file: ${f('ca.pem')}`,
          '  require: true',
          'upstream:',
          '  tls:',
          '    mode: verify-full',
          `    ca_file: ${f('ca.pem')}`,
          '    servername: db.internal',
          'admin:',
          `  token_file: ${f('token')}`,
          'policy:',
          '  signing:',
          '    verify: true',
          `    key_file: ${f('signing.pem')}`,
          'audit:',
          '  sink: file',
          '  file:',
          '    path: /var/log/pgward/audit.log',
          'decision_log:',
          '  sink: file', // disabled: no path needed
          'listen: "127.0.0.1:0"',
          'capture:',
          '  enabled: true',
        ].join('\n'),
      ),
    });
    expect(c.tls.require).toBe(true);
    expect(c.upstream.tls.mode).toBe('verify-full');
    expect(c.audit.file.path).toBe('/var/log/pgward/audit.log');
  });

  test('admin on the same address as listen is fine when the admin server is disabled or the port is 0', () => {
    expect(() => loadConfig({ env: {}, flags: { listen: ':7000', adminListen: ':7000' } })).toThrow(
      ConfigError,
    );
    expect(loadConfig({ env: {}, flags: { listen: ':0', adminListen: ':0' } }).admin.listen).toBe(':0');
    const file = yamlFile('admin:\n  enabled: false\n  listen: ":7000"\nlisten: ":7000"\n');
    expect(loadConfig({ env: {}, file }).admin.enabled).toBe(false);
  });

  test('a cross-field error names where the key came from', () => {
    expect(failure({ env: { PGWARD__TLS__REQUIRE: 'true' } }).message).toBe(
      'config: tls.require: requires tls.cert_file and tls.key_file (from env PGWARD__TLS__REQUIRE)',
    );
  });
});

describe('files that must exist', () => {
  test.each([
    'tls.cert_file',
    'tls.ca_file',
    'upstream.tls.ca_file',
    'admin.token_file',
    'policy.bearer_token_file',
    'policy.signing.key_file',
  ])('%s', (key) => {
    const missing = join(dir, 'nope.pem');
    const others: Record<string, string> = {
      'tls.cert_file': `tls:\n  cert_file: ${missing}\n  key_file: ${f('key.pem')}\n`,
      'tls.ca_file': `tls:\n  cert_file: ${f('cert.pem')}\n  key_file: ${f('key.pem')}\n  ca_file: ${missing}\n`,
      'upstream.tls.ca_file': `upstream:\n  tls:\n    mode: verify-ca\n    ca_file: ${missing}\n`,
      'admin.token_file': `admin:\n  token_file: ${missing}\n`,
      'policy.bearer_token_file': `policy:\n  bearer_token_file: ${missing}\n`,
      'policy.signing.key_file': `policy:\n  signing:\n    key_file: ${missing}\n`,
    };
    const file = yamlFile(others[key] as string);
    const e = failure({ env: {}, file });
    expect(e.key).toBe(key);
    expect(e.message).toBe(
      `config: ${key}: cannot read ${JSON.stringify(missing)}: no such file (from file ${file})`,
    );
  });

  test('a directory is not a readable file', () => {
    expect(failure({ env: {}, file: yamlFile(`admin:\n  token_file: ${dir}\n`) }).message).toContain(
      'is a directory',
    );
  });

  test('a local bundle path need not exist', () => {
    expect(
      loadConfig({ env: {}, flags: { bundle: join(dir, 'not-built-yet.tar.gz') } }).policy.bundle,
    ).toContain('not-built-yet');
  });
});

describe('checkConfigFile', () => {
  test('ok with the config', () => {
    const r = checkConfigFile(yamlFile('listen: ":7777"\n'));
    expect(r.ok && r.config.listen).toBe(':7777');
  });

  test('an error with its one-line message', () => {
    const r = checkConfigFile(yamlFile('limits:\n  max_clients: -1\n'));
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.error.message).toMatch(/^config: limits\.max_clients: expected a positive integer, got -1 /);
  });

  test('the file is checked on its own unless an environment is passed', () => {
    const file = yamlFile('tls:\n  require: true\n');
    const env = { PGWARD__TLS__CERT_FILE: f('cert.pem'), PGWARD__TLS__KEY_FILE: f('key.pem') };
    expect(checkConfigFile(file).ok).toBe(false);
    expect(checkConfigFile(file, env).ok).toBe(true);
  });
});
