/**
 * Micro-benchmark of OpaWasmEngine.evaluate() with a bundle over a mix of realistic inputs
 * (startup, reads, writes, a denied DELETE without WHERE, Parse, Bind). Run by scripts/bench-eval.js.
 */
import { classify, initSqlParser } from '../sql';
import {
  buildBindInput,
  buildParseInput,
  buildQueryInput,
  buildStartupInput,
  SqlPreparedRegistry,
} from './input';
import { buildEngineFromSource } from './opa-engine';
import type { ConnectionInfo, InputDocument } from './types';

export interface EvalBenchResult {
  bundle: string;
  revision: string;
  iterations: number;
  median_us: number;
  p99_us: number;
  mean_us: number;
  mean_input_bytes: number;
  allowed: number;
  denied: number;
  /** Evaluations that failed (error_code set): must be 0 for a sound bundle. */
  errors: number;
  /** Median per input of the mix, to see which messages cost what. */
  by_input: { input: string; bytes: number; median_us: number; allow: boolean }[];
}

const conn: ConnectionInfo = {
  id: 'bench-1',
  client_addr: '10.0.0.7',
  client_port: 50432,
  tls: { enabled: true, version: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', client_cert_subject: null },
  user: 'app',
  database: 'app',
  application_name: 'orders-api',
  parameters: { user: 'app', database: 'app', application_name: 'orders-api', client_encoding: 'UTF8' },
  options: {},
  protocol_version: '3.0',
  authenticated: true,
  transaction_status: 'I',
};

export function benchInputs(): InputDocument[] {
  const opts = { maxSqlBytes: 16 * 1024 };
  const registry = new SqlPreparedRegistry();
  const query = (sql: string) => buildQueryInput(conn, sql, registry.expand(classify(sql)), opts);
  const select =
    'SELECT o.id, o.total, c.name FROM public.orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = $1';
  const selectClass = classify(select);
  return [
    buildStartupInput({ ...conn, authenticated: false }),
    query('SELECT 1'),
    query('SELECT id, total FROM orders WHERE customer_id = 42 ORDER BY created_at DESC LIMIT 20'),
    query('INSERT INTO orders (customer_id, total) VALUES (42, 19.99) RETURNING id'),
    query('UPDATE orders SET status = $$shipped$$ WHERE id = 7'),
    query('DELETE FROM orders'),
    query('BEGIN; SELECT 1; COMMIT'),
    buildParseInput(conn, { statementName: '', sql: select, paramTypes: [23] }, selectClass, opts),
    buildBindInput(
      conn,
      {
        portalName: '',
        statement: { name: '', sql: select, statements: selectClass.statements, parse_error: null },
        params: [{ typeOid: 23, format: 1, value: Buffer.from([0, 0, 0, 42]) }],
      },
      opts,
    ),
  ];
}

export async function runEvalBench(bundlePath: string, iterations = 20_000): Promise<EvalBenchResult> {
  await initSqlParser();
  const engine = await buildEngineFromSource(bundlePath, { entrypoint: 'pgward/decision' });
  const inputs = benchInputs();
  for (let i = 0; i < 5_000; i++) engine.evaluate(inputs[i % inputs.length]!);
  const samples = new Float64Array(iterations);
  const perInput: number[][] = inputs.map(() => []);
  const verdicts: boolean[] = inputs.map(() => false);
  let allowed = 0;
  let denied = 0;
  let errors = 0;
  for (let i = 0; i < iterations; i++) {
    const input = inputs[i % inputs.length]!;
    const start = process.hrtime.bigint();
    const d = engine.evaluate(input);
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
    perInput[i % inputs.length]!.push(samples[i]!);
    verdicts[i % inputs.length] = d.allow;
    if (d.error_code !== null) errors += 1;
    else if (d.allow) allowed += 1;
    else denied += 1;
  }
  const sorted = Array.from(samples).sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  const bytes = inputs.reduce((a, i) => a + Buffer.byteLength(JSON.stringify(i)), 0) / inputs.length;
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    bundle: bundlePath,
    revision: engine.bundle().revision,
    iterations,
    median_us: round(sorted[Math.floor(iterations / 2)]!),
    p99_us: round(sorted[Math.floor(iterations * 0.99)]!),
    mean_us: round(sum / iterations),
    mean_input_bytes: Math.round(bytes),
    allowed,
    denied,
    errors,
    by_input: inputs.map((input, k) => {
      const xs = perInput[k]!.sort((a, b) => a - b);
      const sql = input.message.sql ?? '';
      return {
        input: `${input.message.type}${sql === '' ? '' : ` ${sql.slice(0, 40)}`}`,
        bytes: Buffer.byteLength(JSON.stringify(input)),
        median_us: round(xs[Math.floor(xs.length / 2)] ?? 0),
        allow: verdicts[k]!,
      };
    }),
  };
}
