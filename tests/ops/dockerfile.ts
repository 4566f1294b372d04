/**
 * Runs a Dockerfile without a container engine, as far as that is possible: the build context is
 * what .dockerignore lets through from the repository's files, each stage gets its own root
 * directory, COPY copies from the context or from another stage's root, WORKDIR/ARG/ENV are
 * honoured, and every RUN step runs with bash in the stage's working directory. What a base image
 * provides (node, npm, go) comes from this machine instead: that is the limit of this check.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Instruction {
  op: string;
  args: string;
  line: number;
}

export interface Stage {
  from: string;
  name: string | null;
  instructions: Instruction[];
}

/** Instructions with continuation lines joined; comments and blank lines dropped. */
export function parseDockerfile(text: string): { firstLine: string; stages: Stage[] } {
  const lines = text.split('\n');
  const stages: Stage[] = [];
  let buf = '';
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    if (buf === '' && (/^\s*#/.test(raw) || raw.trim() === '')) continue;
    if (buf === '') start = i + 1;
    if (raw.endsWith('\\')) {
      buf += raw.slice(0, -1) + ' ';
      continue;
    }
    buf += raw;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(buf);
    buf = '';
    if (!m) throw new Error(`Dockerfile:${start}: cannot parse`);
    const op = (m[1] as string).toUpperCase();
    const args = (m[2] as string).trim();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`Dockerfile:${start}: bad FROM`);
      stages.push({ from: f[1] as string, name: f[2] ?? null, instructions: [] });
    } else {
      const cur = stages[stages.length - 1];
      if (!cur) throw new Error(`Dockerfile:${start}: ${op} before FROM`);
      cur.instructions.push({ op, args, line: start });
    }
  }
  return { firstLine: lines[0] ?? '', stages };
}

/** .dockerignore patterns (the subset this repository uses: `**`, `*`, `!`), last match wins. */
export function dockerignoreFilter(text: string): (file: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const p = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      const re = p
        .split('/')
        .map((seg) =>
          seg === '**' ? '(?:.*/)?' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*') + '/',
        )
        .join('');
      // A pattern matches the path itself or any directory above it.
      return { negate, re: new RegExp(`^${re.replace(/\/$/, '')}(?:/.*)?$`) };
    });
  return (file) => {
    let included = true;
    for (const r of rules) if (r.re.test(file)) included = r.negate;
    return included;
  };
}

/** The repository's files as a fresh clone would have them (tracked plus new, not ignored ones). */
export function repositoryFiles(repo: string): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: repo,
    encoding: 'utf8',
  });
  return out.split('\0').filter((f) => f !== '' && fs.existsSync(path.join(repo, f)));
}

function copyPath(src: string, dst: string): void {
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.cpSync(src, dst, { recursive: true, dereference: false });
}

export interface RunResult {
  /** Stage root directories by name (or index), the last one being the image. */
  roots: Map<string, string>;
  image: string;
  /** Every RUN step, in order, with the stage it ran in. */
  ran: Array<{ stage: string; command: string }>;
}

/**
 * Builds `dockerfile` with the context directory `context` into `work`. Absolute paths copied
 * `--from` an external image (e.g. /usr/local/bin/node) are taken from this machine.
 */
export function runDockerfile(
  dockerfile: string,
  context: string,
  work: string,
  env: NodeJS.ProcessEnv,
  log: (s: string) => void = () => undefined,
  /** Base-image paths that live elsewhere on this machine (e.g. node). */
  hostPaths: Record<string, string> = { '/usr/local/bin/node': process.execPath },
): RunResult {
  const { stages } = parseDockerfile(fs.readFileSync(dockerfile, 'utf8'));
  const roots = new Map<string, string>();
  const state = new Map<string, { workdir: string; vars: Record<string, string> }>();
  const ran: RunResult['ran'] = [];
  let image = '';
  stages.forEach((stage, i) => {
    const key = stage.name ?? String(i);
    const root = path.join(work, `stage-${i}-${key}`);
    const parent = roots.get(stage.from);
    if (parent) execFileSync('cp', ['-a', `${parent}/.`, root + '/'], { stdio: 'ignore' });
    fs.mkdirSync(root, { recursive: true });
    // A stage built FROM another stage inherits its files, WORKDIR and ENV.
    let workdir = state.get(stage.from)?.workdir ?? '/';
    const vars: Record<string, string> = { ...(state.get(stage.from)?.vars ?? {}) };
    for (const ins of stage.instructions) {
      const inRoot = (p: string): string => path.join(root, p.startsWith('/') ? p : path.join(workdir, p));
      switch (ins.op) {
        case 'WORKDIR':
          workdir = ins.args.startsWith('/') ? ins.args : path.join(workdir, ins.args);
          fs.mkdirSync(inRoot('.'), { recursive: true });
          break;
        case 'ARG': {
          const [k, v] = ins.args.split('=');
          vars[k as string] = v ?? '';
          break;
        }
        case 'ENV': {
          const [k, v] = ins.args.split('=');
          vars[k as string] = v ?? '';
          break;
        }
        case 'COPY': {
          const parts = ins.args.split(/\s+/);
          const from = parts[0]?.startsWith('--from=') ? (parts.shift() as string).slice(7) : null;
          const dst = parts.pop() as string;
          for (const src of parts) {
            let source: string;
            if (from === null) source = path.join(context, src);
            else if (roots.has(from)) source = path.join(roots.get(from) as string, src);
            else source = src; // an external image: the same absolute path on this machine
            // A stage's base image content (e.g. node in node:20-bookworm-slim) is this machine's.
            if (!fs.existsSync(source) && from !== null && src.startsWith('/'))
              source = hostPaths[src] ?? src;
            if (!fs.existsSync(source)) {
              throw new Error(`Dockerfile:${ins.line}: COPY ${src}: not found (${source})`);
            }
            const target = dst.endsWith('/') ? path.join(inRoot(dst), path.basename(src)) : inRoot(dst);
            copyPath(source, target);
          }
          break;
        }
        case 'RUN': {
          log(`[${key}] RUN ${ins.args}`);
          ran.push({ stage: key, command: ins.args });
          execFileSync('bash', ['-euo', 'pipefail', '-c', ins.args], {
            cwd: inRoot('.'),
            env: { ...env, ...vars },
            stdio: ['ignore', 'pipe', 'pipe'],
            maxBuffer: 64 * 1024 * 1024,
          });
          break;
        }
        default:
          break; // USER, EXPOSE, ENTRYPOINT, CMD: metadata
      }
    }
    roots.set(key, root);
    state.set(key, { workdir, vars });
    image = root;
  });
  return { roots, image, ran };
}
