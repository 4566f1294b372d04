/**
 * Classifier microbenchmark: a realistic mix of 200 distinct statements classified first on a
 * cache miss (parse + fingerprint + walk), then from the cache. Run after a build with
 * `node scripts/bench-classify.js`.
 */
import { createClassifier } from './cache';
import { initSqlParser } from './classify';

export interface ClassifyBenchResult {
  median_us_first_seen: number;
  p99_us_first_seen: number;
  median_us_cached: number;
}

const TEMPLATES: ((i: number) => string)[] = [
  (i) => `SELECT id, email, created_at FROM users WHERE id = ${i}`,
  (i) =>
    `SELECT * FROM orders WHERE customer_id = $1 AND status = 'open' ORDER BY created_at DESC LIMIT ${i}`,
  (i) =>
    `SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > now() - interval '${i} days'`,
  (i) => `INSERT INTO events (kind, payload, at) VALUES ('click', '{"n": ${i}}', now())`,
  (i) => `INSERT INTO audit_log (actor, action) VALUES ($1, $2) RETURNING id, ${i} AS n`,
  (i) => `UPDATE accounts SET balance = balance - ${i} WHERE id = $1`,
  (i) => `DELETE FROM sessions WHERE expires_at < now() - interval '${i} hours'`,
  (i) => `SELECT count(*), sum(total) FROM orders WHERE region = 'r${i}' GROUP BY status HAVING count(*) > 1`,
  (i) =>
    `WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '${i} days') SELECT customer_id, count(*) FROM recent GROUP BY 1`,
  (i) =>
    `INSERT INTO inventory (sku, qty) VALUES ('s${i}', 1) ON CONFLICT (sku) DO UPDATE SET qty = inventory.qty + 1`,
  (i) => `BEGIN; UPDATE stock SET qty = qty - 1 WHERE sku = 's${i}'; COMMIT`,
  (i) => `SET application_name = 'worker-${i}'`,
  (i) => `SELECT pg_advisory_lock(${i})`,
  (i) =>
    `SELECT p.* FROM products p WHERE p.category_id IN (SELECT id FROM categories WHERE parent_id = ${i})`,
  (i) => `SELECT * FROM public.users u LEFT JOIN public.profiles p ON p.user_id = u.id WHERE u.id = ${i}`,
  (i) => `EXPLAIN SELECT * FROM orders WHERE id = ${i}`,
  (i) => `SHOW search_path /* ${i} */`,
  (i) => `SELECT nextval('orders_id_seq'), ${i}`,
  (i) => `UPDATE users SET last_seen = now(), visits = visits + 1 WHERE id = ${i} RETURNING visits`,
  (i) =>
    `SELECT id FROM jobs WHERE state = 'queued' ORDER BY priority DESC LIMIT ${i} FOR UPDATE SKIP LOCKED`,
];

function statements(count: number, seed: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const template = TEMPLATES[i % TEMPLATES.length];
    if (template !== undefined) out.push(template(seed * 100_000 + i));
  }
  return out;
}

function quantile(sorted: number[], q: number): number {
  const v = sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return Math.round(v * 100) / 100;
}

function timeEach(sqls: string[], classify: (sql: string) => unknown, into: number[]): void {
  for (const sql of sqls) {
    const t0 = process.hrtime.bigint();
    classify(sql);
    into.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
}

export async function runClassifyBench(rounds = 5): Promise<ClassifyBenchResult> {
  await initSqlParser();
  // Warm the JIT on other texts so that the measured ones are still first seen.
  const warm = createClassifier({ maxEntries: 10 });
  for (const sql of statements(2000, 9)) warm.classify(sql);

  const mix = statements(200, 1);
  const firstSeen: number[] = [];
  const cached: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const classifier = createClassifier({ maxEntries: 1000 });
    timeEach(mix, (sql) => classifier.classify(sql), firstSeen);
    timeEach(mix, (sql) => classifier.classify(sql), cached);
    if (classifier.stats().misses !== mix.length) throw new Error('benchmark texts are not distinct');
  }
  firstSeen.sort((a, b) => a - b);
  cached.sort((a, b) => a - b);
  return {
    median_us_first_seen: quantile(firstSeen, 0.5),
    p99_us_first_seen: quantile(firstSeen, 0.99),
    median_us_cached: quantile(cached, 0.5),
  };
}
