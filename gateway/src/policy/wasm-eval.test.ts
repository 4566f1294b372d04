import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { loadBundle, type LoadedBundle } from './bundle';
import { parseDecision } from './decision';
import { WasmEvaluator } from './wasm-eval';

const REPO = path.resolve(__dirname, '../../..');

// Allows small `n`; denies a larger one with a denial quoting `input.s` (any text, any size).
const POLICY = `package pgward

decision := {"allow": true, "denials": [], "alerts": []} if input.n < 5

decision := {"allow": false, "denials": [{"rule": "big", "message": input.s, "priority": 1}], "alerts": []} if input.n >= 5
`;

let workDir: string;
let bundle: LoadedBundle;

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgward-wasm-eval-'));
  await fs.mkdir(path.join(workDir, 'src'));
  await fs.writeFile(path.join(workDir, 'src', 'policy.rego'), POLICY);
  const out = path.join(workDir, 'b.tar.gz');
  execFileSync(
    'go',
    ['tool', 'opa', 'build', '-t', 'wasm', '-e', 'pgward/decision', '-o', out, path.join(workDir, 'src')],
    {
      cwd: path.join(REPO, 'wasm-build'),
      env: { ...process.env, PATH: `/usr/local/go/bin:${process.env['PATH'] ?? ''}` },
      stdio: 'pipe',
    },
  );
  bundle = await loadBundle(out);
}, 120_000);

afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

/** A fresh instance with the default pgward limits (1 MiB initial, 64 MiB at most). */
async function instance(maximum = 1024): Promise<LoadedPolicy> {
  const p = await loadPolicy(bundle.wasm, { initial: 16, maximum });
  p.setData({});
  return p;
}

/** What the SDK's own evaluate answers for the same text. */
function reference(p: LoadedPolicy, text: string): unknown {
  return parseDecision(p.evaluate(JSON.parse(text), 0));
}

const TEXTS = [
  { n: 1, s: 'small' },
  { n: 7, s: 'plain ASCII' },
  { n: 7, s: 'é, €, 😀 and a \\"quote\\" — UTF-8 in and out' },
  { n: 9, s: 'x'.repeat(3 * 1024 * 1024) }, // larger than the initial memory: it grows
  { n: 7, s: 'after the growth' },
  { n: 2, s: '\u0000 and \u2028' },
].map((o) => JSON.stringify(o));

describe('WasmEvaluator', () => {
  it('evaluates through the module exports with the opa-wasm we ship', async () => {
    expect(new WasmEvaluator(await instance(), 0).direct).toBe(true);
  });

  it('answers what the SDK answers, for ASCII, UTF-8 and inputs that grow the memory', async () => {
    const direct = new WasmEvaluator(await instance(), 0);
    const sdk = await instance();
    for (const text of [...TEXTS, ...TEXTS]) {
      const d = direct.evaluate(text);
      expect(d).toEqual(reference(sdk, text));
      expect(Object.isFrozen(d.body) && Object.isFrozen(d.body.denials)).toBe(true);
    }
  });

  it('parses each distinct result once: equal results are the same object', async () => {
    const e = new WasmEvaluator(await instance(), 0);
    const a = e.evaluate(JSON.stringify({ n: 1, s: 'a' }));
    expect(e.evaluate(JSON.stringify({ n: 2, s: 'b' }))).toBe(a);
    const denied = e.evaluate(JSON.stringify({ n: 8, s: 'b' }));
    expect(denied).not.toBe(a);
    expect(denied.body.denials).toEqual([{ rule: 'big', message: 'b', priority: 1 }]);
    expect(e.evaluate(JSON.stringify({ n: 8, s: 'c' })).body.denials[0]!.message).toBe('c');
  });

  it('keeps results apart byte for byte, and answers right after the memo turns over', async () => {
    const e = new WasmEvaluator(await instance(), 0);
    expect(e.evaluate(JSON.stringify({ n: 8, s: 'é' })).body.denials[0]!.message).toBe('é');
    expect(e.evaluate(JSON.stringify({ n: 8, s: 'è' })).body.denials[0]!.message).toBe('è');
    // More distinct results than the memo keeps (256): it starts again, and stays right.
    for (let i = 0; i < 600; i++) {
      expect(e.evaluate(JSON.stringify({ n: 8, s: `r${i}` })).body.denials[0]!.message).toBe(`r${i}`);
    }
    expect(e.evaluate(JSON.stringify({ n: 8, s: 'é' })).body.denials[0]!.message).toBe('é');
    expect(e.evaluate(JSON.stringify({ n: 1, s: 'é' })).body.allow).toBe(true);
  });

  it('throws when the input cannot fit under the memory cap, and the instance works after', async () => {
    const e = new WasmEvaluator(await instance(32), 0); // 2 MiB at most
    expect(() => e.evaluate(JSON.stringify({ n: 1, s: 'x'.repeat(4 * 1024 * 1024) }))).toThrow(RangeError);
    expect(e.evaluate(JSON.stringify({ n: 1, s: 'ok' })).body.allow).toBe(true);
  });

  it("falls back to the SDK's evaluate when the instance lacks the fields it reads", async () => {
    const p = await instance();
    const e = new WasmEvaluator({ evaluate: p.evaluate.bind(p) } as unknown as LoadedPolicy, 0);
    expect(e.direct).toBe(false);
    for (const text of TEXTS) expect(e.evaluate(text)).toEqual(reference(p, text));
  });
});
