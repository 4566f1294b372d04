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

describe('Dockerfile', () => {
  it('starts with the syntax line, is multi-stage, and runs as a non-root user', () => {
    expect(parsed.firstLine).toMatch(/^# syntax=docker\/dockerfile:1/);
    expect(parsed.stages.length).toBeGreaterThanOrEqual(3);
    const final = parsed.stages[parsed.stages.length - 1]!;
    const user = final.instructions.filter((i) => i.op === 'USER').pop();
    expect(user).toBeDefined();
    expect(user!.args).not.toMatch(/^(root|0)(:|$)/);
    // Nothing is copied from the build context's node_modules, dist or build outputs.
    for (const s of parsed.stages) {
      for (const i of s.instructions.filter((x) => x.op === 'COPY' && !x.args.startsWith('--from='))) {
        expect(i.args).not.toMatch(/node_modules|(^|\s)dist|wasm-build\/out/);
      }
    }
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
      expect(result.ran.map((r) => r.stage)).toEqual(['deps', 'policy', 'policy', 'build']);

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
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
