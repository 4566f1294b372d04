/**
 * `make policy-test` type-checks the Rego against the input contract (scripts/check-policy-types.sh,
 * called by scripts/test-policy.sh): a rule that reads a field the contract does not define must
 * fail, naming the field, in a copy of rego/ exactly as a platform team would write it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const CHECK = path.join(ROOT, 'scripts/check-policy-types.sh');

function copyRego(extra: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-typecheck-'));
  fs.cpSync(path.join(ROOT, 'rego'), dir, { recursive: true });
  fs.appendFileSync(path.join(dir, 'custom.rego'), extra);
  return dir;
}

function check(dir: string): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(CHECK, [dir], { encoding: 'utf8', timeout: 120_000 });
  fs.rmSync(dir, { recursive: true, force: true });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

test('the shipped rules type-check against the input contract', () => {
  const r = check(copyRego(''));
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

test.each([
  ['usr', 'deny contains "x" if input.connection.usr == "alice"'],
  ['relation', 'deny contains "x" if {\n\tsome s in input.statements\n\ts.relation[_].name == "payroll"\n}'],
  ['paramters', 'deny contains "x" if count(input.message.paramters) > 3'],
])('a site rule reading a field that does not exist (%s) fails, naming the field', (field, rule) => {
  const r = check(copyRego(`\n${rule}\n`));
  expect(r.status).toBe(1);
  expect(r.stderr).toContain('rego_type_error: undefined ref');
  expect(r.stderr).toMatch(
    new RegExp(
      `check-policy-types: FAIL: undefined input field \\S+ \\(custom\\.rego:\\d+; no field "${field}"\\)`,
    ),
  );
});
