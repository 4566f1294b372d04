/**
 * `pgward explain --input FILE` (every message kind, or a full document), `--data FILE` and
 * `--time`, and the evaluated document: explain() on the shipped bundle (make policy) and on a
 * narrow one built with the pinned OPA.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { explain } from '../../gateway/src/explain';
import type { ExplainOptions } from '../../gateway/src/cli';
import { CLI, gatewayRuntime, REPO, SHIPPED_BUNDLE } from '../helpers/gateway';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-explain-input-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * The shipped rules plus one rule that reads the whole input: its evaluated document is the full
 * one the builders make (the shipped bundle alone reads only some fields, see the last test).
 */
const WHOLE = path.join(dir, 'whole.tar.gz');
beforeAll(() => {
  const src = path.join(dir, 'whole');
  fs.cpSync(path.join(REPO, 'rego'), src, { recursive: true, filter: (f) => !f.endsWith('_test.rego') });
  fs.writeFileSync(path.join(src, 'whole.rego'), 'package pgward.custom\n\nwhole_input := input\n');
  execFileSync(gatewayRuntime(), [CLI, 'build', src, '-o', WHOLE], { stdio: 'pipe' });
}, 60_000);

const base: ExplainOptions = {
  bundle: WHOLE,
  entrypoint: 'pgward/decision',
  user: 'postgres',
  clientAddr: '127.0.0.1',
  tls: false,
  startup: false,
  message: 'Query',
};

let n = 0;
function file(value: unknown): string {
  const f = path.join(dir, `f${++n}.json`);
  fs.writeFileSync(f, JSON.stringify(value));
  return f;
}

describe('explain --input', () => {
  it('builds a Query, a Parse, a Bind, a FunctionCall and a startup as the gateway does', async () => {
    const q = await explain(undefined, { ...base, input: file({ type: 'Query', sql: 'DROP TABLE t' }) });
    expect(q.input.message).toMatchObject({ type: 'Query', sql: 'DROP TABLE t' });
    expect(q.input.statements[0]).toMatchObject({ command: 'DROP TABLE', ddl: true });
    expect(q.decision.allow).toBe(false);

    const p = await explain(undefined, {
      ...base,
      input: file({ type: 'Parse', sql: 'SELECT $1', statement_name: 's1', param_types: [23] }),
    });
    expect(p.input.message).toMatchObject({ type: 'Parse', statement_name: 's1', param_types: [23] });
    expect(p.decision.allow).toBe(true);

    const b = await explain(undefined, {
      ...base,
      input: file({
        type: 'Bind',
        statement: { name: 's1', sql: 'SELECT $1' },
        parameters: [
          { type_oid: 23, value: '7' },
          { value: null },
          { type_oid: 17, format: 'binary', value: 'AAE=' },
        ],
      }),
    });
    expect(b.input.message).toMatchObject({ type: 'Bind', statement: { name: 's1', sql: 'SELECT $1' } });
    // The shipped rules read the whole message, so the values are decoded.
    expect(b.input.message.parameters).toEqual([
      { type_oid: 23, format: 'text', value: 7, encoding: 'decoded' },
      { type_oid: 0, format: 'text', value: null, encoding: 'null' },
      { type_oid: 17, format: 'binary', value: 'AAE=', encoding: 'base64' },
    ]);

    const f = await explain(undefined, {
      ...base,
      input: file({ type: 'FunctionCall', function_oid: 1598 }),
    });
    expect(f.input.message).toMatchObject({ type: 'FunctionCall', function_oid: 1598, arguments: [] });

    const s = await explain(undefined, { ...base, user: 'mallory', input: file({ type: 'StartupMessage' }) });
    expect(s.input.phase).toBe('startup');
    expect(s.decision.allow).toBe(false);
  });

  it("takes connection fields the flags cannot give (the server's report)", async () => {
    const server = {
      session_authorization: 'postgres',
      is_superuser: true,
      default_transaction_read_only: false,
      in_hot_standby: false,
      client_encoding: 'UTF8',
      standard_conforming_strings: true,
      server_encoding: 'UTF8',
      server_version: '15.0',
    };
    const r = await explain(undefined, {
      ...base,
      input: file({ type: 'Query', sql: 'SELECT 1', connection: { server, application_name: 'x' } }),
    });
    expect(r.input.connection).toMatchObject({ user: 'postgres', application_name: 'x', server });
  });

  it('takes a full document as it is', async () => {
    const doc = (await explain('SELECT 1', base)).input;
    const again = await explain(undefined, {
      ...base,
      input: file({ ...doc, connection: { ...doc.connection, user: 'mallory' } }),
    });
    expect(again.input.connection.user).toBe('mallory');
  });

  it('refuses anything else, naming what it takes', async () => {
    await expect(explain(undefined, { ...base, input: file({ type: 'Sync' }) })).rejects.toThrow(
      /StartupMessage, Query/,
    );
    await expect(explain(undefined, { ...base, input: path.join(dir, 'missing.json') })).rejects.toThrow(
      /--input/,
    );
  });
});

describe('explain --data', () => {
  it("evaluates with the given data instead of the bundle's", async () => {
    const data = JSON.parse(execFileSync('tar', ['xzf', SHIPPED_BUNDLE, '-O', '/data.json']).toString()) as {
      pgward: { blocked_users: string[] };
    };
    expect((await explain(undefined, { ...base, user: 'bob', startup: true })).decision.allow).toBe(true);
    data.pgward.blocked_users = ['bob'];
    const d = await explain(undefined, { ...base, user: 'bob', startup: true, data: file(data) });
    expect(d.decision.allow).toBe(false);
  });

  it('refuses data that declares pgward.input_options', async () => {
    const data = file({ pgward: { input_options: { sql_text: false } } });
    await expect(explain('SELECT 1', { ...base, data })).rejects.toThrow(
      /PGWARD_ERR_BUNDLE_INPUT_OPTIONS|input_options/,
    );
  });
});

describe('the evaluated document of a narrow bundle', () => {
  it('holds only the paths its rules read, time included at --time', async () => {
    const src = path.join(dir, 'narrow');
    fs.mkdirSync(src);
    fs.writeFileSync(
      path.join(src, 'policy.rego'),
      'package pgward\n\ndecision := {"allow": input.time.hour < 22, "reasons": [input.connection.user], "alerts": []}\n',
    );
    const out = path.join(dir, 'narrow.tar.gz');
    execFileSync(gatewayRuntime(), [CLI, 'build', src, '-o', out], { stdio: 'pipe' });
    const r = await explain('SELECT 1 -- secret', { ...base, bundle: out, time: '2026-12-05T23:00:00Z' });
    expect(r.input).toEqual({ connection: { user: 'postgres' }, time: { hour: 23 } });
    expect(r.decision).toMatchObject({ allow: false, reasons: ['postgres'] });
  });
});
