/**
 * The deployment files agree with the gateway: the Kubernetes ConfigMap holds a valid pgward
 * config, probes hit real sidecar routes, ports match, and docker-compose's environment is read.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { loadConfig } from '../gateway/src/config';
import { buildSidecar } from '../gateway/src/sidecar/app';
import { createMetrics } from '../gateway/src/metrics/metrics';
import { ActiveEngine } from '../gateway/src/policy/opa-engine';

const REPO = path.resolve(__dirname, '..');
type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const docs: Doc[] = YAML.parseAllDocuments(
  fs.readFileSync(path.join(REPO, 'deploy/kubernetes/pgward.yaml'), 'utf8'),
).map((d) => d.toJS() as Doc);
const byKind = (k: string): Doc => {
  const d = docs.find((x) => x.kind === k);
  if (!d) throw new Error(`no ${k}`);
  return d;
};

describe('deploy/kubernetes/pgward.yaml', () => {
  it('embeds a config that pgward accepts', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-deploy-'));
    const text = String(byKind('ConfigMap').data['pgward.yaml']).replaceAll('/etc/pgward/', `${tmp}/`);
    for (const f of ['upstream-ca/ca.crt', 'tls/tls.crt', 'tls/tls.key', 'admin/token']) {
      fs.mkdirSync(path.dirname(path.join(tmp, f)), { recursive: true });
      fs.writeFileSync(path.join(tmp, f), 'x');
    }
    fs.writeFileSync(path.join(tmp, 'pgward.yaml'), text);
    const c = loadConfig({ file: path.join(tmp, 'pgward.yaml'), env: {} });
    expect(c.listen).toBe('0.0.0.0:6432');
    expect(c.admin.listen).toBe('0.0.0.0:9432');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('probes real sidecar routes on the admin port, and ports line up', async () => {
    const dep = byKind('Deployment');
    const ctr = dep.spec.template.spec.containers[0];
    const ports = Object.fromEntries(ctr.ports.map((p: Doc) => [p.name, p.containerPort]));
    expect(ports).toEqual({ postgres: 6432, admin: 9432 });
    expect(ctr.args).toEqual(['serve', '--config', '/etc/pgward/config/pgward.yaml']);
    const app = buildSidecar({
      engine: new ActiveEngine(),
      bundleStatus: () => ({ info: null, last_reload_error: null, last_reload_at: null }),
      reload: async () => ({ ok: false, error: 'x', code: 'y' }),
      upstreamReady: async () => true,
      registry: createMetrics().registry,
    });
    for (const probe of [ctr.livenessProbe, ctr.readinessProbe]) {
      expect(probe.httpGet.port).toBe('admin');
      const r = await app.inject({ method: 'GET', url: probe.httpGet.path });
      expect(r.statusCode).not.toBe(404);
    }
    await app.close();
    const svc = byKind('Service');
    expect(svc.spec.ports.map((p: Doc) => p.targetPort)).toEqual(['postgres', 'admin']);
    // The drain timeout must fit inside the pod's grace period.
    const cfg = YAML.parse(String(byKind('ConfigMap').data['pgward.yaml'])) as Doc;
    expect(cfg.limits.shutdown_timeout_ms / 1000).toBeLessThan(
      dep.spec.template.spec.terminationGracePeriodSeconds,
    );
  });
});

describe('docker-compose.yml', () => {
  it('passes environment variables pgward reads', () => {
    const compose = YAML.parse(fs.readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8')) as Doc;
    const env = compose.services.pgward.environment as Record<string, string>;
    const c = loadConfig({ env });
    expect(c.upstream.address).toBe('postgres:5432');
    expect(c.listen).toBe('0.0.0.0:6432');
    expect(c.admin.listen).toBe('0.0.0.0:9432');
  });
});
