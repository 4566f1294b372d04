/**
 * The command-line contract: `--help` on each command, bad flags and config values exit 2 with one
 * line naming them, `check-config` and `explain` work on the built bundle.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, gatewayRuntime, REPO, SHIPPED_BUNDLE } from './helpers/gateway';

function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(gatewayRuntime(), [CLI, ...args], {
    cwd: REPO,
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('pgward CLI', () => {
  it.each([['serve'], ['check-config'], ['explain']])('%s --help prints usage and exits 0', (cmd) => {
    const r = run([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: pgward /);
  });

  it('an unknown flag exits 2 with one line', () => {
    const r = run(['serve', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no-such-flag/);
  });

  it('a bad flag value exits 2 with one line naming it', () => {
    const r = run(['serve', '--listen', 'nonsense']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/listen/);
  });

  it('a bad config value exits 2 with one line naming the key', () => {
    const f = path.join(tmp, 'bad.yaml');
    fs.writeFileSync(f, 'limits:\n  max_clients: lots\n');
    const r = run(['serve', '--config', f]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/limits\.max_clients/);
  });

  it('a bad environment value exits 2 naming the variable', () => {
    const r = run(['serve'], { PGWARD_LISTEN: 'host:notaport' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PGWARD_LISTEN/);
  });

  it('check-config says OK for a good file and names the key of a bad one', () => {
    const good = path.join(tmp, 'good.yaml');
    fs.writeFileSync(good, 'listen: "127.0.0.1:7000"\nupstream:\n  address: "db:5432"\n');
    expect(run(['check-config', good])).toMatchObject({ code: 0, stdout: 'config OK\n' });
    const bad = path.join(tmp, 'typo.yaml');
    fs.writeFileSync(bad, 'upstream:\n  adress: "db:5432"\n');
    const r = run(['check-config', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/upstream\.adress: unknown key/);
  });

  it('check-config --offline validates a Kubernetes config whose files exist only in the cluster', () => {
    const k8s = path.join(tmp, 'k8s.yaml');
    fs.writeFileSync(
      k8s,
      [
        'tls:',
        '  cert_file: /etc/pgward/tls/tls.crt',
        '  key_file: /etc/pgward/tls/tls.key',
        'admin:',
        '  token_file: /etc/pgward/admin/token',
        '',
      ].join('\n'),
    );
    const online = run(['check-config', k8s]);
    expect(online.code).toBe(2);
    expect(online.stderr).toMatch(/tls\.cert_file: cannot read "\/etc\/pgward\/tls\/tls\.crt": no such file/);
    expect(run(['check-config', '--offline', k8s])).toMatchObject({
      code: 0,
      stdout: 'config OK (offline: referenced files not checked)\n',
    });
    // Offline still checks everything else: types, unknown keys, cross-field rules.
    fs.writeFileSync(k8s, 'tls:\n  cert_file: /etc/pgward/tls/tls.crt\n');
    const r = run(['check-config', '--offline', k8s]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tls\.cert_file: set without tls\.key_file/);
  });

  it('explain prints the input document and the decision (exit 1 when denied)', () => {
    const r = run(['explain', 'DELETE FROM orders', '--user', 'alice', '--bundle', SHIPPED_BUNDLE]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as {
      input: { statements: Array<{ command: string }> };
      decision: { allow: boolean; reasons: string[] };
    };
    expect(out.input.statements[0]!.command).toBe('DELETE');
    expect(out.decision.allow).toBe(false);
    expect(out.decision.reasons[0]).toMatch(/DELETE without WHERE/);
    const ok = run(['explain', 'SELECT 1', '--user', 'alice', '--bundle', SHIPPED_BUNDLE]);
    expect(ok.code).toBe(0);
    const startup = run(['explain', '--startup', '--user', 'mallory', '--bundle', SHIPPED_BUNDLE]);
    expect(startup.code).toBe(1);
    expect(JSON.parse(startup.stdout).decision.sqlstate).toBe('28000');
  });

  it('explain with a missing bundle exits 2 with one line', () => {
    const r = run(['explain', 'SELECT 1', '--bundle', path.join(tmp, 'nope.tar.gz')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
