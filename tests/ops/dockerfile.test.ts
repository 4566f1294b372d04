/**
 * The image builds from a fresh clone (issue 13). No container engine runs here, so this test does
 * what can be done without one: the Dockerfile's shape (syntax line first, multi-stage, non-root,
 * nothing from the host's node_modules), the build context that .dockerignore leaves, and every RUN
 * step executed as a script on a copy of that context (tests/ops/dockerfile.ts). The resulting
 * image directory must then run pgward with production dependencies only.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../helpers/gateway';
import { dockerignoreFilter, parseDockerfile, repositoryFiles, runDockerfile } from './dockerfile';

jest.setTimeout(20 * 60_000);

const DOCKERFILE = path.join(REPO, 'Dockerfile');
const text = fs.readFileSync(DOCKERFILE, 'utf8');
const parsed = parseDockerfile(text);
type Stage = (typeof parsed.stages)[number];

/** A stage's instructions with those of the stages it is built FROM first (what it inherits). */
function inherited(stage: Stage): Stage['instructions'] {
  const parent = parsed.stages.find((s) => s.name !== null && s.name === stage.from);
  return [...(parent ? inherited(parent) : []), ...stage.instructions];
}

describe('Dockerfile', () => {
  it('starts with the syntax line, is multi-stage, and runs as a non-root user', () => {
    expect(parsed.firstLine).toMatch(/^# syntax=docker\/dockerfile:1/);
    expect(parsed.stages.length).toBeGreaterThanOrEqual(3);
    const final = parsed.stages[parsed.stages.length - 1]!;
    const user = inherited(final)
      .filter((i) => i.op === 'USER')
      .pop();
    expect(user).toBeDefined();
    expect(user!.args).not.toMatch(/^(root|0)(:|$)/);
    // Nothing is copied from the build context's node_modules, dist or build outputs.
    for (const s of parsed.stages) {
      for (const i of s.instructions.filter((x) => x.op === 'COPY' && !x.args.startsWith('--from='))) {
        expect(i.args).not.toMatch(/node_modules|(^|\s)dist|wasm-build\/out/);
      }
    }
  });

  it('builds a second runtime target on Bun, pinned as the Makefile pins it, that differs only in its runtime', () => {
    const bun = parsed.stages.find((s) => s.name === 'bun');
    const final = parsed.stages[parsed.stages.length - 1]!;
    expect(bun).toBeDefined();
    // Both are built FROM the same stage and add only their runtime and entrypoint.
    expect(bun!.from).toBe(final.from);
    const own = (s: Stage): string[] => s.instructions.map((i) => `${i.op} ${i.args}`);
    expect(own(final)).toEqual(['ENTRYPOINT ["node", "dist/cli.js"]', 'CMD ["serve"]']);
    expect(own(bun!)).toEqual([
      'COPY --from=bun-install /opt/bun/node_modules/bun/bin/bun.exe /usr/local/bin/bun',
      'ENTRYPOINT ["bun", "dist/cli.js"]',
      'CMD ["serve"]',
    ]);
    const user = inherited(bun!)
      .filter((i) => i.op === 'USER')
      .pop();
    expect(user?.args).toBe('1000:1000');
    const makefile = fs.readFileSync(path.join(REPO, 'Makefile'), 'utf8');
    const pinned = /^BUN_VERSION := (\S+)$/m.exec(makefile)?.[1];
    expect(pinned).toBeDefined();
    expect(text).toContain(`ARG BUN_VERSION=${pinned}\n`);
  });

  it('.dockerignore keeps host build outputs and secrets-prone files out of the context', () => {
    const keep = dockerignoreFilter(fs.readFileSync(path.join(REPO, '.dockerignore'), 'utf8'));
    for (const f of [
      'node_modules/x/index.js',
      'gateway/node_modules/y.js',
      'dist/cli.js',
      'wasm-build/out/bundle.tar.gz',
      '.git/config',
      '.tmp/x',
      'tests/ops/drain.test.ts',
    ]) {
      expect([f, keep(f)]).toEqual([f, false]);
    }
    for (const f of ['package.json', 'package-lock.json', 'gateway/src/cli.ts', 'rego/decision.rego']) {
      expect([f, keep(f)]).toEqual([f, true]);
    }
  });

  it('its RUN steps, run as a script on the build context, produce an image that serves', () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-image-'));
    try {
      const keep = dockerignoreFilter(fs.readFileSync(path.join(REPO, '.dockerignore'), 'utf8'));
      const context = path.join(work, 'context');
      const files = repositoryFiles(REPO).filter(keep);
      expect(files.some((f) => f.includes('node_modules'))).toBe(false);
      for (const f of files) {
        fs.mkdirSync(path.dirname(path.join(context, f)), { recursive: true });
        fs.copyFileSync(path.join(REPO, f), path.join(context, f));
      }
      const env: NodeJS.ProcessEnv = {
        PATH: `/usr/local/go/bin:${process.env.PATH ?? ''}`,
        HOME: process.env.HOME,
        GOTOOLCHAIN: 'local',
        npm_config_prefer_offline: 'true',
      };
      const result = runDockerfile(DOCKERFILE, context, path.join(work, 'stages'), env);
      expect(result.ran.map((r) => r.stage)).toEqual(['deps', 'policy', 'policy', 'build', 'bun-install']);

      const image = path.join(result.image, 'app');
      for (const f of ['dist/cli.js', 'package.json', 'wasm-build/out/bundle.tar.gz']) {
        expect([f, fs.existsSync(path.join(image, f))]).toEqual([f, true]);
      }
      // Production dependencies only.
      expect(fs.existsSync(path.join(image, 'node_modules', 'fastify'))).toBe(true);
      expect(fs.existsSync(path.join(image, 'node_modules', 'jest'))).toBe(false);
      expect(fs.existsSync(path.join(image, 'node_modules', 'typescript'))).toBe(false);

      // The image's entrypoint with its own bundle: a decision, then a config check.
      const explain = spawnSync(
        process.execPath,
        ['dist/cli.js', 'explain', 'SELECT 1', '--bundle', 'wasm-build/out/bundle.tar.gz'],
        { cwd: image, encoding: 'utf8', env: { PATH: process.env.PATH, NODE_ENV: 'production' } },
      );
      expect(explain.stderr).toBe('');
      const out = JSON.parse(explain.stdout) as { decision: { revision: string } };
      expect(out.decision.revision).toBe('image');
      const version = execFileSync(process.execPath, ['dist/cli.js', '--version'], {
        cwd: image,
        encoding: 'utf8',
      });
      expect(version.trim()).toMatch(/^\d+\.\d+\.\d+$/);

      // The Bun target: the same files, run by the Bun binary it holds.
      const bunRoot = result.roots.get('bun') as string;
      const bunImage = path.join(bunRoot, 'app');
      const bun = path.join(bunRoot, 'usr/local/bin/bun');
      for (const f of [
        'dist/cli.js',
        'package.json',
        'wasm-build/out/bundle.tar.gz',
        'node_modules/fastify',
      ]) {
        expect([f, fs.existsSync(path.join(bunImage, f))]).toEqual([f, true]);
      }
      const bunExplain = spawnSync(
        bun,
        ['dist/cli.js', 'explain', 'DROP TABLE t', '--bundle', 'wasm-build/out/bundle.tar.gz'],
        { cwd: bunImage, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', NODE_ENV: 'production' } },
      );
      expect(bunExplain.stderr).toBe('');
      const bunOut = JSON.parse(bunExplain.stdout) as { decision: { revision: string; allow: boolean } };
      expect(bunOut.decision).toMatchObject({ revision: 'image', allow: false });
      expect(execFileSync(bun, ['--version'], { encoding: 'utf8' }).trim()).toBe(
        /^ARG BUN_VERSION=(\S+)$/m.exec(text)?.[1],
      );
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
