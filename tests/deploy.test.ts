/**
 * The deployment files agree with the gateway. Every kustomize variant is rendered and decoded
 * strictly with the Kubernetes Go types by the validator (`make manifests-tool`, no network), then
 * checked here against pgward itself: the ConfigMap holds a config `check-config --offline`
 * accepts, probes hit real sidecar routes, ports and selectors line up, the shutdown fits the grace
 * period, the admin plane is separate and fenced. docker-compose's environment is read too.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { loadConfig } from '../gateway/src/config';
import { buildSidecar } from '../gateway/src/sidecar/app';
import { createMetrics } from '../gateway/src/metrics/metrics';
import { ActiveEngine } from '../gateway/src/policy/opa-engine';
import { CLI, gatewayRuntime } from './helpers/gateway';

const REPO = path.resolve(__dirname, '..');
const VALIDATOR = path.join(REPO, '.tmp', 'bin', 'pgward-validate-manifests');
const KUSTOMIZE = path.join(REPO, 'deploy', 'kubernetes');
type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const VARIANTS = ['base', ...fs.readdirSync(path.join(KUSTOMIZE, 'overlays')).map((o) => `overlays/${o}`)];
const rendered = new Map<string, Doc[]>();
let out = '';

beforeAll(() => {
  if (!fs.existsSync(VALIDATOR)) throw new Error(`${VALIDATOR} missing: run 'make manifests-tool' first`);
  out = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-manifests-'));
  const dirs = VARIANTS.map((v) => path.join(KUSTOMIZE, v));
  execFileSync(VALIDATOR, ['-out', out, ...dirs], { encoding: 'utf8' });
  VARIANTS.forEach((v, i) => {
    const text = fs.readFileSync(path.join(out, `${i}.yaml`), 'utf8');
    rendered.set(
      v,
      YAML.parseAllDocuments(text).map((d) => d.toJS() as Doc),
    );
  });
});

afterAll(() => {
  if (out) fs.rmSync(out, { recursive: true, force: true });
});

const get = (v: string, kind: string, name?: string): Doc => {
  const d = rendered.get(v)!.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!d) throw new Error(`${v}: no ${kind} ${name ?? ''}`);
  return d;
};

describe('the manifest validator', () => {
  it('fails on an unknown field and on a wrong type', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-bad-manifest-'));
    try {
      const write = (body: string): void => {
        fs.writeFileSync(path.join(tmp, 'kustomization.yaml'), 'resources: [svc.yaml]\n');
        fs.writeFileSync(path.join(tmp, 'svc.yaml'), body);
      };
      write('apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  prots: [{port: 1}]\n');
      let r = spawnSync(VALIDATOR, [tmp], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/unknown field "spec\.prots"/);
      write('apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: "5432"}]\n');
      r = spawnSync(VALIDATOR, [tmp], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/cannot unmarshal string .* of type int32/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe.each(VARIANTS)('deploy/kubernetes/%s', (v) => {
  const container = (): Doc => get(v, 'Deployment').spec.template.spec.containers[0];
  const config = (): Doc => {
    const cm = rendered
      .get(v)!
      .find((d) => d.kind === 'ConfigMap' && d.metadata.name.startsWith('pgward-config'));
    return YAML.parse(String(cm!.data['pgward.yaml'])) as Doc;
  };

  it('has every object a production deployment needs', () => {
    const kinds = rendered
      .get(v)!
      .map((d) => d.kind)
      .sort();
    for (const k of [
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Service',
      'ServiceAccount',
    ]) {
      expect(kinds).toContain(k);
    }
    if (v !== 'base') expect(kinds).toContain('ServiceMonitor');
  });

  it('embeds a config that `pgward check-config --offline` accepts, and pgward reads it as meant', () => {
    const cm = rendered
      .get(v)!
      .find((d) => d.kind === 'ConfigMap' && d.metadata.name.startsWith('pgward-config'))!;
    const file = path.join(out, `${v.replace('/', '-')}.pgward.yaml`);
    fs.writeFileSync(file, String(cm.data['pgward.yaml']));
    const r = spawnSync(gatewayRuntime(), [CLI, 'check-config', '--offline', file], { encoding: 'utf8' });
    expect({ code: r.status, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const c = loadConfig({ file, env: {}, offline: true });
    expect(c.listen).toBe('0.0.0.0:6432');
    expect(c.admin.listen).toBe('0.0.0.0:9432');
    // The volume holding the config is the generated ConfigMap (name with its content hash).
    const vols = get(v, 'Deployment').spec.template.spec.volumes as Doc[];
    expect(vols.find((x) => x.name === 'config')!.configMap.name).toBe(cm.metadata.name);
  });

  it('mounts every file the config names', () => {
    const c = loadConfig({
      file: path.join(out, `${v.replace('/', '-')}.pgward.yaml`),
      env: {},
      offline: true,
    });
    const mounts = (container().volumeMounts as Doc[]).map((m) => String(m.mountPath));
    const files = [
      c.tls.cert_file,
      c.tls.key_file,
      c.upstream.tls.ca_file,
      c.admin.token_file,
      c.policy.bearer_token_file,
      c.policy.signing.key_file,
      c.cluster.peer_secret_file,
      c.policy.bundle.startsWith('/etc/') ? c.policy.bundle : undefined,
    ].filter((f): f is string => f !== undefined);
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) expect([f, mounts.some((m) => f.startsWith(`${m}/`))]).toEqual([f, true]);
  });

  it('probes real sidecar routes on the admin port; ports and selectors line up', async () => {
    const ctr = container();
    const ports = Object.fromEntries((ctr.ports as Doc[]).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ postgres: 6432, admin: 9432, peer: 6433 });
    expect(ctr.args).toEqual(['serve', '--config', '/etc/pgward/config/pgward.yaml']);
    const app = buildSidecar({
      engine: new ActiveEngine(),
      bundleStatus: () => ({ info: null, last_reload_error: null, last_reload_at: null }),
      reload: async () => ({ ok: false, error: 'x', code: 'y' }),
      upstreamReady: async () => true,
      registry: createMetrics().registry,
    });
    for (const probe of [ctr.startupProbe, ctr.livenessProbe, ctr.readinessProbe]) {
      expect(probe.httpGet.port).toBe('admin');
      const r = await app.inject({ method: 'GET', url: probe.httpGet.path });
      expect(r.statusCode).not.toBe(404);
    }
    expect(ctr.readinessProbe.httpGet.path).toBe('/readyz');
    await app.close();

    const podLabels = get(v, 'Deployment').spec.template.metadata.labels as Doc;
    const client = get(v, 'Service', 'pgward');
    const admin = get(v, 'Service', 'pgward-admin');
    expect(client.spec.ports.map((p: Doc) => p.targetPort)).toEqual(['postgres']);
    expect(admin.spec.ports.map((p: Doc) => p.targetPort)).toEqual(['admin']);
    for (const sel of [
      client.spec.selector,
      admin.spec.selector,
      get(v, 'PodDisruptionBudget').spec.selector.matchLabels,
      get(v, 'NetworkPolicy').spec.podSelector.matchLabels,
    ]) {
      expect(podLabels).toMatchObject(sel);
    }
    expect(get(v, 'HorizontalPodAutoscaler').spec.scaleTargetRef).toMatchObject({
      kind: 'Deployment',
      name: get(v, 'Deployment').metadata.name,
    });
    expect(get(v, 'Deployment').spec.replicas).toBeUndefined(); // the HPA owns it
    if (v !== 'base') {
      const sm = get(v, 'ServiceMonitor');
      expect(admin.metadata.labels).toMatchObject(sm.spec.selector.matchLabels);
      expect(client.metadata.labels).not.toMatchObject(sm.spec.selector.matchLabels);
      expect(sm.spec.endpoints[0]).toMatchObject({ port: 'admin', path: '/metrics' });
    }
  });

  it('fences the admin port with the NetworkPolicy, and not the client port', () => {
    const rules = get(v, 'NetworkPolicy').spec.ingress as Doc[];
    const adminRule = rules.find((r) => r.ports.some((p: Doc) => p.port === 'admin'))!;
    expect(adminRule.from.length).toBeGreaterThan(0);
    for (const f of adminRule.from as Doc[]) {
      // Every peer is narrowed by labels: never "every namespace" ({}).
      const sel = f.namespaceSelector ?? f.podSelector;
      expect(Object.keys(sel.matchLabels ?? {}).length).toBeGreaterThan(0);
    }
    const clientRule = rules.find((r) => r.ports.some((p: Doc) => p.port === 'postgres'))!;
    expect(clientRule.ports.some((p: Doc) => p.port === 'admin')).toBe(false);
    // Forwarded cancels only from pgward pods, which the headless peers Service names (ready or not).
    const peerRule = rules.find((r) => r.ports.some((p: Doc) => p.port === 'peer'))!;
    expect(peerRule.from).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'pgward' } } }]);
    const peers = get(v, 'Service', 'pgward-peers');
    expect(peers.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    expect(config().cluster.peers).toEqual([`pgward-peers:${peers.spec.ports[0].port}`]);
    expect(config().cluster.peer_listen).toBe(`0.0.0.0:${peers.spec.ports[0].port}`);
  });

  it('the preStop, the shutdown delay, the drain and the cancel wait fit in the grace period', () => {
    const spec = get(v, 'Deployment').spec.template.spec;
    const c = config();
    const preStop = Number(container().lifecycle.preStop.sleep.seconds);
    expect(preStop).toBeGreaterThan(0);
    const needed =
      preStop +
      (c.limits.shutdown_delay_ms + c.limits.shutdown_timeout_ms + c.limits.shutdown_cancel_wait_ms) / 1000;
    expect(needed + 5).toBeLessThanOrEqual(spec.terminationGracePeriodSeconds);
  });

  it('runs hardened: non-root, read-only root, no privilege escalation, all capabilities dropped', () => {
    const spec = get(v, 'Deployment').spec.template.spec;
    expect(spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(container().securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container().resources.requests).toMatchObject({
      cpu: expect.any(String),
      memory: expect.any(String),
    });
    expect((spec.topologySpreadConstraints as Doc[]).map((t) => t.topologyKey)).toEqual([
      'topology.kubernetes.io/zone',
      'kubernetes.io/hostname',
    ]);
  });
});

describe('the bundle variants', () => {
  it('configmap-bundle mounts the ConfigMap directory (no subPath) and watches it', () => {
    const v = 'overlays/configmap-bundle';
    const ctr = get(v, 'Deployment').spec.template.spec.containers[0];
    const mount = (ctr.volumeMounts as Doc[]).find((m) => m.name === 'bundle')!;
    expect(mount.subPath).toBeUndefined();
    const vol = (get(v, 'Deployment').spec.template.spec.volumes as Doc[]).find((x) => x.name === 'bundle')!;
    expect(vol.configMap.name).toBe('pgward-bundle');
    const cm = rendered
      .get(v)!
      .find((d) => d.kind === 'ConfigMap' && d.metadata.name.startsWith('pgward-config'))!;
    const c = YAML.parse(String(cm.data['pgward.yaml'])) as Doc;
    expect(c.policy.watch).toBe(true);
    expect(path.dirname(c.policy.bundle)).toBe(mount.mountPath);
  });

  it('bundle-server polls an https bundle server with a token file and verifies signatures', () => {
    const cm = rendered
      .get('overlays/bundle-server')!
      .find((d) => d.kind === 'ConfigMap' && d.metadata.name.startsWith('pgward-config'))!;
    const c = YAML.parse(String(cm.data['pgward.yaml'])) as Doc;
    expect(c.policy.bundle).toMatch(/^https:\/\//);
    expect(c.policy.signing.verify).toBe(true);
    expect(c.policy.bearer_token_file).toBeDefined();
  });
});

describe('docker-compose.yml', () => {
  it('passes environment variables pgward reads, with a token on the admin port', () => {
    const compose = YAML.parse(fs.readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8')) as Doc;
    const raw = compose.services.pgward.environment as Record<string, string>;
    // Compose interpolation: ${NAME:?message} is required (compose refuses to start without it).
    expect(raw.PGWARD_ADMIN_TOKEN).toMatch(/^\$\{PGWARD_ADMIN_TOKEN:\?.+\}$/);
    const env = { ...raw, PGWARD_ADMIN_TOKEN: 'token-from-the-shell' };
    const c = loadConfig({ env });
    expect(c.upstream.address).toBe('postgres:5432');
    expect(c.listen).toBe('0.0.0.0:6432');
    expect(c.admin.listen).toBe('0.0.0.0:9432');
    expect(c.admin.token).toBe('token-from-the-shell');
    // The admin port is published on the loopback interface only.
    const published = (compose.services.pgward.ports as string[]).filter((p) => p.endsWith(':9432'));
    expect(published).toEqual(['127.0.0.1:9432:9432']);
  });
});
