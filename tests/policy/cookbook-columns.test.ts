/**
 * The cookbook's column rule (docs/policy-cookbook.md, "Deny reading a column"), taken word for
 * word from the document: type-checked against the input contract, tested with `opa test`, then
 * built into a bundle and run through the real gateway in front of the local PostgreSQL with the
 * simple and the extended protocol.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildBundleWithData, REPO, startGateway, type RunningGateway } from '../helpers/gateway';
import {
  connectAs,
  dropDatabase,
  expectPolicyError,
  recreateDatabase,
  rejection,
  withDirect,
  type TrackedClient,
} from './policy-helpers';

const DB = 'pgward_policy_columns';
const REASON = 'reading users.ssn is reserved for admins';
const env = { ...process.env, PATH: `/usr/local/go/bin:${process.env['PATH'] ?? ''}` };

function cookbookRule(): string {
  const doc = fs.readFileSync(path.join(REPO, 'docs/policy-cookbook.md'), 'utf8');
  const m = /<!-- cookbook:column-rule -->\s*```rego\n([\s\S]*?)```/.exec(doc);
  if (!m) throw new Error('no rego block after <!-- cookbook:column-rule --> in docs/policy-cookbook.md');
  return m[1]!;
}

/** rego/ (tests and builtins included) with the cookbook rule as custom.rego. */
function regoWithRule(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-cookbook-columns-'));
  fs.cpSync(path.join(REPO, 'rego'), dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'custom.rego'), cookbookRule());
  return dir;
}

const OPA_TEST = `package pgward_test

col(schema, table, column, access) := {"schema": schema, "table": table, "column": column, "access": access, "star": is_null(column)}

with_cols(s, cols) := object.union(s, {"columns": cols})

users_select(cols) := with_cols(select_from(null, "users"), cols)

test_cookbook_ssn_denied[note] if {
	some note, cols in {
		"by name": [col(null, "users", "ssn", "read")],
		"schema-qualified": [col("public", "users", "ssn", "read")],
		"star": [col(null, "users", null, "read")],
		"unattributed name": [col(null, null, "ssn", "read")],
		"unattributed star": [col(null, null, null, "read")],
	}
	d := decide(query("app", [users_select(cols)]))
	d.allow == false
	d.reasons == ["${REASON}"]
}

test_cookbook_ssn_denied_behind_execute if {
	inner := users_select([col(null, "users", "ssn", "read")])
	d := decide(query("app", [stmt({"command": "EXECUTE", "node": "ExecuteStmt", "prepared": {"kind": "execute", "name": "p", "inner": inner}})]))
	d.reasons == ["${REASON}"]
}

test_cookbook_other_columns_allowed[note] if {
	some note, cols in {
		"name": [col(null, "users", "name", "read")],
		"ssn of another table": [col(null, "orders", "ssn", "read")],
		"ssn written": [col(null, "users", "ssn", "write")],
		"another schema": [col("audit", "users", "ssn", "read")],
	}
	decide(query("app", [users_select(cols)])).allow == true
}

test_cookbook_admin_allowed if {
	decide(query("root", [users_select([col(null, "users", "ssn", "read")])])).allow == true with data.pgward.admins as ["root"]
}
`;

let regoDir = '';
let gw: RunningGateway;
let app: TrackedClient;
let admin: TrackedClient;

beforeAll(async () => {
  regoDir = regoWithRule();
  await recreateDatabase(DB);
  await withDirect(DB, (c) =>
    c.query(`ALTER TABLE public.users ADD COLUMN ssn text;
             UPDATE public.users SET ssn = '078-05-1120';
             GRANT SELECT, UPDATE ON public.users TO app`),
  );
  const bundle = await buildBundleWithData({ admins: ['postgres'] }, regoDir);
  gw = await startGateway({ bundle });
  app = await connectAs(gw, 'app', DB);
  admin = await connectAs(gw, 'postgres', DB);
}, 180_000);

afterAll(async () => {
  await app?.end();
  await admin?.end();
  await gw?.stop();
  await dropDatabase(DB);
  if (regoDir) fs.rmSync(regoDir, { recursive: true, force: true });
});

test('the cookbook rule type-checks against the input contract and passes opa test', () => {
  const check = spawnSync(path.join(REPO, 'scripts/check-policy-types.sh'), [regoDir], {
    encoding: 'utf8',
    env,
  });
  expect(check.stderr).toBe('');
  expect(check.status).toBe(0);
  fs.writeFileSync(path.join(regoDir, 'cookbook_columns_test.rego'), OPA_TEST);
  const t = spawnSync(
    'go',
    ['tool', 'opa', 'test', '--timeout', '120s', '--run', 'test_cookbook', '-v', regoDir],
    {
      cwd: path.join(REPO, 'wasm-build'),
      encoding: 'utf8',
      env,
    },
  );
  expect(t.stdout + t.stderr).toMatch(/PASS: 1[0-9]\/1[0-9]/);
  expect(t.status).toBe(0);
}, 180_000);

test.each([
  'SELECT ssn FROM users',
  'SELECT * FROM users',
  'SELECT u.* FROM users u JOIN t ON t.id = u.id',
  'SELECT row_to_json(u) FROM users u',
  'COPY users (id, ssn) TO STDOUT',
  "UPDATE users SET name = 'x' WHERE id = 1 RETURNING *",
  'WITH x AS (SELECT ssn FROM public.users) SELECT * FROM x',
])('denied through the gateway: %s', async (sql) => {
  expectPolicyError(await rejection(app.client.query(sql)), REASON);
  expect(await app.status()).toBe('I');
});

test('denied with the extended protocol (a named prepared statement with a parameter)', async () => {
  const err = await rejection(
    app.client.query({ name: 'ssn1', text: 'SELECT ssn FROM users WHERE id = $1', values: [1] }),
  );
  expectPolicyError(err, REASON);
  expect(await app.status()).toBe('I');
});

test('other columns pass, and an admin reads the column', async () => {
  expect((await app.client.query('SELECT name FROM users ORDER BY id')).rows).toEqual([
    { name: 'alice' },
    { name: 'bob' },
  ]);
  expect(
    (await app.client.query({ text: 'SELECT name FROM users WHERE id = $1', values: [2] })).rows,
  ).toEqual([{ name: 'bob' }]);
  expect((await admin.client.query('SELECT ssn FROM users WHERE id = 1')).rows).toEqual([
    { ssn: '078-05-1120' },
  ]);
});

test('the denials are counted under the rule id', async () => {
  const res = await gw.admin('/metrics');
  const text = await res.text();
  expect(text).toMatch(/pgward_decisions_total\{[^}]*outcome="deny"[^}]*rule="users_ssn"[^}]*\} [1-9]/);
});
