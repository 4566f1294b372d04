#!/usr/bin/env bash
# Lint, test and build-check the Rego policies with the pinned OPA (wasm-build/go.mod):
#   1. opa fmt: rego/ and tests/fixtures/bundles/ are formatted (lists the files and shows the diff)
#   2. opa check --strict on rego/ and on every fixture bundle; rego/ type-checked against the input
#      contract (scripts/check-policy-types.sh: a rule reading a field the contract does not define
#      fails, naming the field; proven here on a temporary copy of rego/ with a typo)
#   3. opa test rego/, then coverage of the policy files (not the tests) >= $POLICY_COVERAGE_MIN (90)
#   4. a policy calling a builtin that opa-wasm lacks must FAIL scripts/build-policy.sh
#   5. rego/ and every fixture bundle build with scripts/build-policy.sh
#   6. the compiled policy.wasm, run in @open-policy-agent/opa-wasm, gives the same decision as
#      OPA's Go evaluator for every input document of the tests (rego/parity_test.rego)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="/usr/local/go/bin:$PATH"
REGO="$ROOT/rego"
FIXTURES="$ROOT/tests/fixtures/bundles"
COVERAGE_MIN="${POLICY_COVERAGE_MIN:-90}"

fail() {
  echo "test-policy: FAIL: $*" >&2
  exit 1
}
step() { echo "test-policy: $*"; }

OPA="$(cd "$ROOT/wasm-build" && go tool -n opa)" || fail "cannot build the pinned OPA (cd wasm-build && go tool opa)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

step "opa $("$OPA" version | sed -n 's/^Version: //p')"

# 1. formatting
if ! unformatted="$("$OPA" fmt --list --fail "$REGO" "$FIXTURES")"; then
  echo "$unformatted" >&2
  "$OPA" fmt --diff "$REGO" "$FIXTURES" >&2 || true
  fail "Rego files are not formatted: run 'cd wasm-build && go tool opa fmt -w ../rego ../tests/fixtures/bundles'"
fi
step "opa fmt: ok"

# 2. strict checks
"$OPA" check --strict "$REGO" || fail "opa check --strict rego/"
"$ROOT/scripts/check-policy-types.sh" "$REGO" >/dev/null || fail "rego/ does not type-check against the input contract"
# The type check itself: a site rule with a typo'd field must fail, naming the field.
cp -r "$REGO" "$TMP/typo"
printf '\ndeny contains "typo" if input.connection.usr == "alice"\n' >>"$TMP/typo/custom.rego"
if "$ROOT/scripts/check-policy-types.sh" "$TMP/typo" >"$TMP/typo.log" 2>&1; then
  fail "a rule reading input.connection.usr (no such field) passed the type check; it is broken"
fi
grep -q 'undefined input field input.connection.usr (custom.rego:[0-9]*; no field "usr")' "$TMP/typo.log" || {
  cat "$TMP/typo.log" >&2
  fail "the type check of a typo'd field failed without naming the field"
}
step "opa check --strict, type check against the input contract: ok (a typo'd field fails, named)"

# 3. tests and coverage
"$OPA" test --timeout 120s "$REGO" | tee "$TMP/opa-test.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || fail "opa test rego/"
# The count for make test's closing line (scripts/test-summary.js).
mkdir -p "$ROOT/.tmp/test-results"
sed -n 's|^PASS: \([0-9]*\)/\([0-9]*\)$|{"suite":"opa test rego/","passed":\1,"failed":0,"total":\2}|p' "$TMP/opa-test.txt" \
  >"$ROOT/.tmp/test-results/opa.json"
[[ -s "$ROOT/.tmp/test-results/opa.json" ]] || fail "opa test printed no PASS: N/N line"
"$OPA" test --timeout 120s --coverage --format json "$REGO" >"$TMP/coverage.json" || fail "opa test --coverage rego/"
node - "$TMP/coverage.json" "$COVERAGE_MIN" <<'EOF' || fail "policy coverage is below ${COVERAGE_MIN}%"
const fs = require('fs');
const [file, min] = process.argv.slice(2);
const report = JSON.parse(fs.readFileSync(file, 'utf8'));
let covered = 0;
let notCovered = 0;
const gaps = [];
for (const [name, f] of Object.entries(report.files || {})) {
  if (name.endsWith('_test.rego')) continue;
  covered += (f.covered_lines || 0);
  notCovered += (f.not_covered_lines || 0);
  for (const r of f.not_covered || []) gaps.push(`${name}:${r.start.row}-${r.end.row}`);
}
if (covered + notCovered === 0) {
  console.error('test-policy: no coverage data for the policy files');
  process.exit(1);
}
const pct = (100 * covered) / (covered + notCovered);
console.log(`test-policy: coverage of policy files ${pct.toFixed(1)}% (floor ${min}%)` + (gaps.length ? `; not covered: ${gaps.join(' ')}` : ''));
if (pct < Number(min)) process.exit(1);
EOF

# 4. the capabilities guard itself: a builtin missing from opa-wasm must fail the build
mkdir -p "$TMP/missing-builtin"
cat >"$TMP/missing-builtin/policy.rego" <<'EOF'
package pgward

# METADATA
# entrypoint: true
decision := {"allow": true, "reasons": [], "alerts": [], "at": time.now_ns()}
EOF
if "$ROOT/scripts/build-policy.sh" "$TMP/missing-builtin" "$TMP/missing-builtin.tar.gz" >"$TMP/missing.log" 2>&1; then
  fail "a policy calling time.now_ns (not in the opa-wasm capabilities) built; the capabilities guard is broken"
fi
grep -q 'time.now_ns' "$TMP/missing.log" && grep -q '@open-policy-agent/opa-wasm does not implement' "$TMP/missing.log" ||
  {
    cat "$TMP/missing.log" >&2
    fail "the build of a policy with a missing builtin failed without naming the builtin"
  }
step "capabilities guard: a builtin missing from opa-wasm fails the build"

# 5. builds
"$ROOT/scripts/build-policy.sh" "$REGO" "$TMP/bundle.tar.gz" >/dev/null || fail "build of rego/"
for dir in "$FIXTURES"/*/; do
  name="$(basename "$dir")"
  "$ROOT/scripts/build-policy.sh" "$dir" "$TMP/fixtures/$name.tar.gz" >/dev/null || fail "build of fixture $name"
done
step "builds: rego/ and $(find "$FIXTURES" -mindepth 1 -maxdepth 1 -type d | wc -l) fixture bundles"

# 6. wasm parity with the Go evaluator
"$OPA" eval -d "$REGO" --format json 'data.pgward_test.parity_inputs' >"$TMP/parity-inputs.json" || fail "opa eval parity_inputs"
"$OPA" eval -d "$REGO" --format json 'data.pgward_test.parity_decisions' >"$TMP/parity-decisions.json" || fail "opa eval parity_decisions"
mkdir -p "$TMP/bundle"
tar -xzf "$TMP/bundle.tar.gz" -C "$TMP/bundle" 2>/dev/null || fail "cannot unpack the built bundle"
(cd "$ROOT" && node - "$TMP" <<'EOF') || fail "wasm decisions differ from OPA's Go evaluator"
const fs = require('fs');
const path = require('path');
const { loadPolicy } = require(path.resolve('node_modules/@open-policy-agent/opa-wasm'));
const tmp = process.argv[2];
const value = (file) => JSON.parse(fs.readFileSync(path.join(tmp, file), 'utf8')).result[0].expressions[0].value;
const canonical = (v) =>
  Array.isArray(v) ? v.map(canonical)
  : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]))
  : v;
(async () => {
  const inputs = value('parity-inputs.json');
  const expected = value('parity-decisions.json');
  const policy = await loadPolicy(fs.readFileSync(path.join(tmp, 'bundle/policy.wasm')));
  policy.setData(JSON.parse(fs.readFileSync(path.join(tmp, 'bundle/data.json'), 'utf8')));
  let failures = 0;
  const started = process.hrtime.bigint();
  for (const [note, input] of Object.entries(inputs)) {
    const result = policy.evaluate(input);
    const got = JSON.stringify(canonical(result.length === 1 ? result[0].result : null));
    const want = JSON.stringify(canonical(expected[note]));
    if (got !== want) {
      failures++;
      console.error(`test-policy: ${note}\n  wasm: ${got}\n  go:   ${want}`);
    }
  }
  const n = Object.keys(inputs).length;
  const us = Number(process.hrtime.bigint() - started) / 1000 / n;
  if (failures > 0 || n === 0) process.exit(1);
  console.log(`test-policy: wasm parity: ${n} inputs give identical decisions (mean ${us.toFixed(0)} µs per evaluation, cold start included)`);
})().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
EOF
step "all checks passed"
