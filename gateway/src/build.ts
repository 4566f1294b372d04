/**
 * `pgward build REGO_DIR -o BUNDLE`: scripts/build-policy.sh (the one build `make policy` runs)
 * from the package, whatever the working directory.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from './explain';

export function buildBundle(
  dir: string,
  o: { output: string; entrypoint: string; revision?: string },
): number {
  const script = path.join(packageRoot(), 'scripts', 'build-policy.sh');
  const env: NodeJS.ProcessEnv = { ...process.env, PGWARD_ENTRYPOINT: o.entrypoint };
  if (o.revision !== undefined) env.PGWARD_POLICY_REVISION = o.revision;
  const r = spawnSync('bash', [script, path.resolve(dir), path.resolve(o.output)], { stdio: 'inherit', env });
  if (r.error !== undefined) {
    process.stderr.write(`pgward: cannot run ${script}: ${r.error.message}\n`);
    return 1;
  }
  return r.status ?? 1;
}
