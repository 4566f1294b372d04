import { loadConfig } from '../config';
import { isReloadable, planConfigReload } from './config-reload';

const base = loadConfig({ env: {} });

it('applies the reloadable keys, names the rest, and merges only what it applied', () => {
  const next = loadConfig({
    env: {
      PGWARD_LOG_LEVEL: 'debug',
      PGWARD__LIMITS__MAX_CLIENTS: '42',
      PGWARD__POLICY__SIGNING__KEY_ID: 'k2',
      PGWARD_LISTEN: '127.0.0.1:7777',
      PGWARD__AUDIT__SINK: 'none',
    },
  });
  const plan = planConfigReload(base, next);
  expect(plan.applied).toEqual(['audit.sink', 'limits.max_clients', 'log.level', 'policy.signing.key_id']);
  expect(plan.restart_required).toEqual(['listen']);
  expect(plan.merged.log.level).toBe('debug');
  expect(plan.merged.limits.max_clients).toBe(42);
  expect(plan.merged.listen).toBe(base.listen);
  expect(plan.merged.audit.sink).toBe('none');
});

it('reports nothing when nothing changed', () => {
  expect(planConfigReload(base, loadConfig({ env: {} }))).toMatchObject({
    applied: [],
    restart_required: [],
  });
});

it('knows which keys are reloadable', () => {
  expect(isReloadable('policy.signing.verify')).toBe(true);
  expect(isReloadable('policy.entrypoint')).toBe(false);
  expect(isReloadable('limits.max_pipeline_messages')).toBe(false);
  expect(isReloadable('tls.cert_file')).toBe(false);
  expect(isReloadable('audit.redact.literals')).toBe(true);
  expect(isReloadable('decision_log.sink')).toBe(false);
});
