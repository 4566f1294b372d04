#!/usr/bin/env node
/**
 * Replay throughput: generates a synthetic pgward capture (default 200,000 frames: connections of
 * an application using named prepared statements with Bind/Execute/Sync, simple-protocol
 * transactions, ReadyForQuery answers) and replays it against the shipped bundle.
 * Usage: node scripts/bench-replay.js [frames] [bundle]   (after `npm run build` and `make policy`)
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
const { runReplay } = require(path.join(REPO, 'dist', 'replay', 'cli.js'));
const p = require(path.join(REPO, 'dist', 'protocol', 'index.js'));

const target = Number(process.argv[2] ?? 200_000);
const bundle = process.argv[3] ?? path.join(REPO, 'wasm-build', 'out', 'bundle.tar.gz');
const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-bench-replay-')), 'synthetic.jsonl');

const header = {
  format: 'pgward-capture',
  version: 1,
  created: new Date().toISOString(),
  source: 'pgward',
  pgward_version: '0.1.0',
  redact: { parameters: false, literals: false },
  max_sql_bytes_in_input: 65536,
};
const b64 = (b) => b.toString('base64');
const z = { I: b64(p.encodeReadyForQuery('I')), T: b64(p.encodeReadyForQuery('T')) };
const sync = b64(p.encodeSync());
const execute = b64(p.encodeExecute(''));
const simple = ['BEGIN', 'COMMIT', 'SELECT 1', "SET application_name = 'worker'", 'SELECT now()'].map((s) => b64(p.encodeQuery(s)));
const parses = [
  ['get_account', 'SELECT abalance FROM pgbench_accounts WHERE aid = $1'],
  ['upd_account', 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2'],
  ['ins_history', 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, now())'],
].map(([name, sql]) => [name, b64(p.encodeParse(name, sql, []))]);

const out = fs.createWriteStream(file);
out.write(JSON.stringify(header) + '\n');
let frames = 0;
let t = Date.now() * 1000;
let conn = 0;
const lines = [];
const rec = (o) => {
  lines.push(JSON.stringify(o));
  if ('dir' in o) frames++;
};
while (frames < target) {
  const id = `bench-${++conn}`;
  const params = [['user', 'app'], ['database', 'app'], ['application_name', 'bench']];
  rec({ t: t++, conn: id, ev: 'connection', client_addr: '10.0.0.5', client_port: 40000 + (conn % 20000), tls: { enabled: false, version: null, cipher: null, client_cert_subject: null }, user: 'app', database: 'app', application_name: 'bench', parameters: Object.fromEntries(params), options: {}, protocol_version: '3.0' });
  rec({ t: t++, conn: id, dir: 'F', frame: b64(p.encodeStartupMessage(p.PROTOCOL_3_0, params)) });
  rec({ t: t++, conn: id, ev: 'auth', protocol_version: '3.0' });
  rec({ t: t++, conn: id, dir: 'B', frame: z.I });
  for (const [, parse] of parses) {
    rec({ t: t++, conn: id, dir: 'F', ts: 'I', frame: parse });
    rec({ t: t++, conn: id, dir: 'F', ts: 'I', frame: sync });
    rec({ t: t++, conn: id, dir: 'B', frame: z.I });
  }
  for (let i = 0; i < 500 && frames < target; i++) {
    const aid = Buffer.from(String(1 + ((conn * 7919 + i) % 100000)));
    rec({ t: t++, conn: id, dir: 'F', ts: 'I', frame: simple[0] });
    rec({ t: t++, conn: id, dir: 'B', frame: z.T });
    for (const [name] of parses) {
      const bind = p.encodeBind('', name, name === 'get_account' ? [{ format: 0, value: aid }] : name === 'upd_account' ? [{ format: 0, value: Buffer.from('5') }, { format: 0, value: aid }] : [{ format: 0, value: Buffer.from('1') }, { format: 0, value: Buffer.from('1') }, { format: 0, value: aid }, { format: 0, value: Buffer.from('5') }]);
      rec({ t: t++, conn: id, dir: 'F', ts: 'T', frame: b64(bind) });
      rec({ t: t++, conn: id, dir: 'F', ts: 'T', frame: execute });
      rec({ t: t++, conn: id, dir: 'F', ts: 'T', frame: sync });
      rec({ t: t++, conn: id, dir: 'B', frame: z.T });
    }
    rec({ t: t++, conn: id, dir: 'F', ts: 'T', frame: simple[1] });
    rec({ t: t++, conn: id, dir: 'B', frame: z.I });
    rec({ t: t++, conn: id, dir: 'F', ts: 'I', frame: simple[2 + (i % 3)] });
    rec({ t: t++, conn: id, dir: 'B', frame: z.I });
  }
  rec({ t: t++, conn: id, dir: 'F', ts: 'I', frame: b64(p.encodeTerminate()) });
  rec({ t: t++, conn: id, ev: 'close', outcome: 'client_terminated' });
  out.write(lines.join('\n') + '\n');
  lines.length = 0;
}
out.end(async () => {
  const size = fs.statSync(file).size;
  try {
    const run = await runReplay({ captures: [file], bundle });
    const s = run.report.summary;
    const fps = Math.round(s.frames / s.seconds);
    console.log(
      JSON.stringify({
        benchmark: 'replay',
        frames: s.frames,
        decisions: s.decisions.total,
        connections: s.connections,
        capture_bytes: size,
        seconds: Number(s.seconds.toFixed(3)),
        frames_per_second: fps,
        decisions_per_second: Math.round(s.decisions.total / s.seconds),
        target_frames_per_second: 50000,
        ok: fps >= 50000,
      }),
    );
    process.exitCode = fps >= 50000 ? 0 : 1;
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
});
