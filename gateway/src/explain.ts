/**
 * `pgward explain`: the document a bundle evaluates and its decision, for one message (a SQL text
 * as a Query or Parse, the startup, or any message kind from `--input FILE`) and connection. The
 * input is built by the live gateway's builders (policy/input.ts) with the options the live
 * gateway derives from the bundle (bundleInputOptions), and cut by the engine to the bundle's input
 * paths (policy/input-project.ts): what is printed is exactly what the gateway evaluates.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createClassifier, initSqlParser } from './sql';
import { loadBundle } from './policy/bundle';
import { OpaWasmEngine } from './policy/opa-engine';
import {
  buildBindInput,
  buildFunctionCallInput,
  buildParseInput,
  buildQueryInput,
  buildStartupInput,
  type InputOptions,
  type WireParameter,
} from './policy/input';
import { bundleInputOptions } from './policy/input-project';
import type { ConnectionInfo, Decision, InputDocument } from './policy/types';
import type { ExplainOptions } from './cli';

/** The directory of pgward's package.json (dist/ or gateway/src/ are one or two levels below). */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const p = path.join(dir, 'package.json');
    if (fs.existsSync(p) && (JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string }).name === 'pgward')
      return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(__dirname, '..');
    dir = up;
  }
}

/** The bundle `make policy` builds, found from the package, not from the working directory. */
export function defaultBundle(): string {
  return path.join(packageRoot(), 'wasm-build', 'out', 'bundle.tar.gz');
}

function readJson(file: string, what: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  } catch (err) {
    throw new Error(`explain: cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

function connection(o: ExplainOptions, authenticated: boolean): ConnectionInfo {
  const params: Record<string, string> = { user: o.user, database: o.database ?? o.user };
  if (o.application) params.application_name = o.application;
  return {
    id: 'explain',
    client_addr: o.clientAddr,
    client_port: 0,
    tls: { enabled: o.tls, version: o.tls ? 'TLSv1.3' : null, cipher: null, client_cert_subject: null },
    user: o.user,
    database: o.database ?? o.user,
    application_name: o.application ?? null,
    parameters: params,
    options: {},
    protocol_version: '3.0',
    authenticated,
    transaction_status: 'I',
  };
}

type MessageSpec = Record<string, unknown> & { type?: unknown };

/**
 * The connection from the flags with the fields of a message spec's `connection` over it: how
 * `--input` gives what the flags cannot, e.g. `server` (what PostgreSQL reported: absent here
 * otherwise, present in the live gateway after authentication), `tls`, `options`, `id`.
 */
function withConnection(conn: ConnectionInfo, fields: unknown): ConnectionInfo {
  if (fields === undefined) return conn;
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields))
    throw new Error('explain: --input: connection must be an object');
  return { ...conn, ...(fields as Partial<ConnectionInfo>) };
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Error(`explain: --input: ${what} must be a string`);
  return v;
}

/** Bind/FunctionCall values as given in a message spec: text, or base64 for `"format": "binary"`. */
function wireParams(list: unknown, what: string): WireParameter[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new Error(`explain: --input: ${what} must be a list`);
  return list.map((p: { type_oid?: unknown; format?: unknown; value?: unknown }) => {
    const format = p.format === 'binary' ? 1 : 0;
    const value =
      p.value === null || p.value === undefined
        ? null
        : Buffer.from(String(p.value), format === 1 ? 'base64' : 'utf8');
    return { typeOid: typeof p.type_oid === 'number' ? p.type_oid : 0, format, value };
  });
}

/** The full input document for a message spec (`--input`): built as the gateway builds it. */
function buildFromSpec(m: MessageSpec, conn: ConnectionInfo, opts: InputOptions): InputDocument {
  const classify = (sql: string) => createClassifier({ maxEntries: 16 }).classify(sql);
  switch (m.type) {
    case 'StartupMessage':
      return buildStartupInput({ ...conn, authenticated: false });
    case 'Query': {
      const sql = str(m.sql, 'sql');
      return buildQueryInput(conn, sql, classify(sql), opts);
    }
    case 'Parse': {
      const sql = str(m.sql, 'sql');
      const types = Array.isArray(m.param_types) ? (m.param_types as number[]) : [];
      const name = typeof m.statement_name === 'string' ? m.statement_name : '';
      return buildParseInput(conn, { statementName: name, sql, paramTypes: types }, classify(sql), opts);
    }
    case 'Bind': {
      const st = (m.statement ?? null) as { name?: unknown; sql?: unknown } | null;
      const sql = st === null ? null : str(st.sql, 'statement.sql');
      const c = sql === null ? null : classify(sql);
      const statement =
        c === null ? null : { name: typeof st?.name === 'string' ? st.name : '', sql: sql!, ...c };
      const portal = typeof m.portal_name === 'string' ? m.portal_name : '';
      return buildBindInput(
        conn,
        { portalName: portal, statement, params: wireParams(m.parameters, 'parameters') },
        opts,
      );
    }
    case 'FunctionCall': {
      if (typeof m.function_oid !== 'number')
        throw new Error('explain: --input: function_oid must be a number');
      return buildFunctionCallInput(
        conn,
        { oid: m.function_oid, args: wireParams(m.arguments, 'arguments') },
        opts,
      );
    }
    default:
      throw new Error(
        'explain: --input: a full input document (with "version" and "phase") or a message with "type" ' +
          'StartupMessage, Query, Parse, Bind or FunctionCall',
      );
  }
}

export async function explain(
  sql: string | undefined,
  o: ExplainOptions,
): Promise<{ input: InputDocument; decision: Decision }> {
  if (!o.startup && sql === undefined && o.input === undefined)
    throw new Error('explain: give a SQL text, --input FILE or --startup');
  await initSqlParser();
  const bundle = await loadBundle(o.bundle ?? defaultBundle());
  if (o.data !== undefined) {
    const data = readJson(o.data, '--data');
    if (typeof data !== 'object' || data === null || Array.isArray(data))
      throw new Error(`explain: --data ${o.data} is not a JSON object`);
    bundle.data = data as Record<string, unknown>;
  }
  // One clock reading, so that the document printed and the one evaluated have the same time.
  const time = o.time === undefined ? Date.now() : Date.parse(o.time);
  if (Number.isNaN(time)) throw new Error(`explain: --time ${o.time} is not an RFC 3339 time`);
  const engine = await OpaWasmEngine.create(bundle, { entrypoint: o.entrypoint, now: () => time });
  const opts = bundleInputOptions({ maxSqlBytes: 65536 }, engine.bundle());
  let full: InputDocument;
  if (o.input !== undefined) {
    const spec = readJson(o.input, '--input') as MessageSpec;
    if (typeof spec !== 'object' || spec === null) throw new Error('explain: --input is not a JSON object');
    full =
      'version' in spec && 'phase' in spec
        ? (spec as unknown as InputDocument)
        : buildFromSpec(spec, withConnection(connection(o, true), spec.connection), opts);
  } else if (o.startup) full = buildStartupInput(connection(o, false));
  else {
    const spec = o.message === 'Parse' ? { type: 'Parse', sql } : { type: 'Query', sql };
    full = buildFromSpec(spec, connection(o, true), opts);
  }
  // The engine evaluates the full document cut to the bundle's input paths; show that one.
  const input = engine.evaluatedInput(full);
  return { input, decision: engine.evaluate(full) };
}
