/**
 * Framing microbenchmark (not a jest test). BackendScanner over a DataRow-heavy result stream in
 * 64 KiB socket-sized chunks, every inspected message decoded by readBackendMessage (DataRow is
 * skipped by type byte, never decoded), and FrontendFramer + readFrontendMessage over pgbench-like
 * extended-protocol batches (Parse/Bind/Describe/Execute/Sync) in 16 KiB chunks. After a build:
 * `node -e "require('./dist/protocol/framing.bench').runFramingBench()"`.
 */
import { SESSION_INSPECTED_BACKEND_TYPES, typeTable } from './message-types';
import { BackendScanner, FrontendFramer } from './framing';
import { MessageWriter } from './writer';
import { DEFAULT_MAX_MESSAGE_BYTES } from './limits';
import { encodeReadyForQuery } from './backend/ready-for-query';
import { readBackendMessage } from './backend/backend-message';
import { encodeBind } from './frontend/bind';
import { readFrontendMessage } from './frontend/frontend-message';
import { encodeParse } from './frontend/parse';
import { encodeDescribe, encodeExecute } from './frontend/portal-messages';
import { encodeSync } from './frontend/simple-messages';

export interface ThroughputResult {
  megabytes_per_second: number;
  messages_per_second: number;
  /** The same per second of this process's CPU time: steadier than wall time on a shared machine. */
  cpu_megabytes_per_second: number;
  cpu_messages_per_second: number;
  bytes: number;
  messages: number;
}

export interface FramingBenchResult {
  backend_scanner: ThroughputResult;
  frontend_framer: ThroughputResult;
}

/** The types the session inspects: everything else (DataRow above all) is skipped by length. */
const INSPECT = typeTable(SESSION_INSPECTED_BACKEND_TYPES);

function chunk(stream: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i += size) out.push(stream.subarray(i, i + size));
  return out;
}

/** Result sets of 1,000 rows: 8 text columns of 4–40 bytes, one NULL, now and then a 2 KiB value. */
function backendStream(targetBytes: number): { stream: Buffer; messages: number } {
  const parts: Buffer[] = [];
  let size = 0;
  let messages = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    size += b.length;
    messages++;
  };
  const rd = new MessageWriter().int16(9);
  for (let c = 0; c < 9; c++)
    rd.cstring(`col_${c}`)
      .uint32(16384)
      .int16(c + 1)
      .uint32(25)
      .int16(-1)
      .int32(-1)
      .int16(0);
  const rowDescription = rd.message('T');
  const big = Buffer.alloc(2048, 0x61);
  let i = 0;
  while (size < targetBytes) {
    push(rowDescription);
    for (let r = 0; r < 1000; r++, i++) {
      const w = new MessageWriter(256).int16(9);
      for (let c = 0; c < 8; c++) {
        const v = Buffer.from(`v${i}-${c}-${'x'.repeat((i * 7 + c * 5) % 37)}`);
        w.int32(v.length).bytes(v);
      }
      if (i % 50 === 0) w.int32(big.length).bytes(big);
      else w.int32(-1);
      push(w.message('D'));
    }
    push(new MessageWriter().cstring('SELECT 1000').message('C'));
    push(encodeReadyForQuery('I'));
  }
  return { stream: Buffer.concat(parts, size), messages };
}

/** pgbench -M extended "TPC-B (sort of)": five statements per transaction, each P/B/D/E/S. */
function frontendStream(transactions: number): { stream: Buffer; messages: number } {
  const sqls = [
    'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;',
    'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
    'UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;',
    'UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2;',
    'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);',
  ];
  const parts: Buffer[] = [];
  let messages = 0;
  for (let t = 0; t < transactions; t++) {
    for (const sql of sqls) {
      const params = [String(t % 5000), String(t % 100000), String(t % 10), String(t % 1)].map((v) => ({
        format: 0 as const,
        value: Buffer.from(v),
      }));
      parts.push(
        encodeParse('', sql),
        encodeBind('', '', params),
        encodeDescribe('P', ''),
        encodeExecute('', 0),
        encodeSync(),
      );
      messages += 5;
    }
  }
  return { stream: Buffer.concat(parts), messages };
}

function throughput(bytes: number, messages: number, ns: bigint, cpu: NodeJS.CpuUsage): ThroughputResult {
  const s = Number(ns) / 1e9;
  const c = (cpu.user + cpu.system) / 1e6;
  return {
    megabytes_per_second: Math.round((bytes / 1e6 / s) * 10) / 10,
    messages_per_second: Math.round(messages / s),
    cpu_megabytes_per_second: Math.round((bytes / 1e6 / c) * 10) / 10,
    cpu_messages_per_second: Math.round(messages / c),
    bytes,
    messages,
  };
}

function benchScanner(rounds: number): ThroughputResult {
  const { stream, messages } = backendStream(32 * 1024 * 1024);
  const chunks = chunk(stream, 64 * 1024);
  let inspected = 0;
  const inspector = (_type: number, source: Buffer, start: number, end: number): null => {
    if (readBackendMessage(source.subarray(start, end)).name !== 'DataRow') inspected++;
    return null;
  };
  const runOnce = (): void => {
    const scanner = new BackendScanner(INSPECT, new Float64Array(256));
    let forwarded = 0;
    for (const c of chunks) for (const b of scanner.push(c, inspector)) forwarded += b.length;
    if (forwarded !== stream.length) throw new Error('scanner lost bytes');
  };
  runOnce(); // warm-up
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) runOnce();
  const ns = process.hrtime.bigint() - t0;
  const cpu = process.cpuUsage(c0);
  if (inspected === 0) throw new Error('nothing inspected');
  return throughput(stream.length * rounds, messages * rounds, ns, cpu);
}

function benchFramer(rounds: number): ThroughputResult {
  const { stream, messages } = frontendStream(20_000);
  const chunks = chunk(stream, 16 * 1024);
  const runOnce = (): void => {
    const framer = new FrontendFramer(DEFAULT_MAX_MESSAGE_BYTES);
    framer.setStartupPhase(false);
    let n = 0;
    for (const c of chunks) {
      framer.push(c);
      for (let f = framer.next(); f !== null; f = framer.next()) {
        if (readFrontendMessage(f).bytes === f.bytes) n++;
      }
    }
    if (n !== messages) throw new Error('framer lost messages');
  };
  runOnce();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) runOnce();
  const ns = process.hrtime.bigint() - t0;
  const cpu = process.cpuUsage(c0);
  return throughput(stream.length * rounds, messages * rounds, ns, cpu);
}

export function runFramingBench(rounds = 5): FramingBenchResult {
  const result: FramingBenchResult = {
    backend_scanner: benchScanner(rounds),
    frontend_framer: benchFramer(rounds),
  };
  console.log(JSON.stringify(result, null, 2));
  return result;
}

if (require.main === module) runFramingBench();
