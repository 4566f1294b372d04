/**
 * pgward's own log and the stdout sinks (audit, decision log) share the process's stdout. Each
 * record must reach the reader whole, in one line, even when the reader is slow and the pipe is
 * full: two writers with their own buffers (pino's own fd writer beside process.stdout) would
 * splice one record into another, and a log collector would drop both.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

const DIST = path.resolve(__dirname, '../../dist');

const CHILD = `
const { createLogger } = require(${JSON.stringify(path.join(DIST, 'main.js'))});
const { createSink } = require(${JSON.stringify(path.join(DIST, 'audit/sink.js'))});
const logger = createLogger('info');
const sink = createSink(
  { sink: 'stdout', file: {} },
  { name: 'decision_log', metrics: { auditSinkErrorsTotal: { inc: () => undefined } } },
);
let i = 0;
let accepted = 0;
function tick() {
  for (let k = 0; k < 100; k++, i++) {
    // The sink refuses (and counts) what stdout cannot take past its bound; the rest must arrive.
    if (sink.write(JSON.stringify({ decision_id: 'd' + i, pad: 'x'.repeat(6000) }) + '\\n')) accepted++;
    if (i % 2 === 0) logger.info({ n: i, pad: 'y'.repeat(3000) }, 'policy bundle activated');
  }
  if (i < 6000) setImmediate(tick);
  else process.stderr.write('accepted ' + accepted);
}
tick();
`;

it('log lines and decision-log lines never splice into each other on a slow stdout', async () => {
  const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const out = child.stdout;
  // A slow reader: the pipe fills while the child writes, then drains in bursts.
  out.pause();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const pauses = setInterval(() => (out.isPaused() ? out.resume() : out.pause()), 20);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(pauses);
  expect(code).toBe(0);
  const accepted = Number(/^accepted (\d+)$/.exec(stderr)?.[1]);
  expect(accepted).toBeGreaterThan(100);
  const lines = Buffer.concat(chunks).toString('utf8').split('\n');
  expect(lines.pop()).toBe('');
  let decisions = 0;
  let logs = 0;
  const broken: string[] = [];
  for (const line of lines) {
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (typeof o['decision_id'] === 'string') decisions++;
      else if (o['msg'] === 'policy bundle activated') logs++;
    } catch {
      broken.push(line.slice(0, 120));
    }
  }
  expect(broken).toEqual([]);
  // A refused write is not written; one accepted while the sink reported a failure may be (true or false).
  expect(decisions).toBeGreaterThanOrEqual(accepted);
  expect(decisions).toBeLessThanOrEqual(6000);
  expect(logs).toBe(3000);
}, 60_000);
