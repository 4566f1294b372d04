#!/usr/bin/env bash
# Type-check a Rego directory against pgward's input contract with the pinned OPA:
#
#   scripts/check-policy-types.sh [REGO_DIR]     (default rego/)
#
# The contract's one source is docs/policy-input.schema.json; docs/opa-schemas/input.json is the
# schema OPA's type checker reads, generated from it by scripts/gen-opa-schema.js (this script
# fails when it is stale). The shipped decision.rego binds it to `input` for package pgward and its
# subpackages (METADATA `schemas`, scope subpackages), so site rules in pgward.custom are checked
# too. A rule that reads a field the contract does not define (input.connection.usr) fails with
# one line per such field: 'check-policy-types: FAIL: undefined input field input.connection.usr
# (custom.rego:22; no field "usr")'.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="/usr/local/go/bin:$PATH"
REGO_DIR="${1:-$ROOT/rego}"
SCHEMAS="$ROOT/docs/opa-schemas"

fail() {
  echo "check-policy-types: FAIL: $*" >&2
  exit 1
}

[[ -d "$REGO_DIR" ]] || fail "policy directory not found: $REGO_DIR"
node "$ROOT/scripts/gen-opa-schema.js" --check || fail "docs/opa-schemas/input.json is stale"
OPA="$(cd "$ROOT/wasm-build" && go tool -n opa)" || fail "cannot build the pinned OPA (cd wasm-build && go tool opa)"

if ! out="$("$OPA" check --strict --schema "$SCHEMAS" "$REGO_DIR" 2>&1)"; then
  echo "$out" >&2
  # "<dir>/<file>:<row>: rego_type_error: undefined ref: input.x.y" (or a variable bound to part of
  # the input, s.relation[_].name) followed by 'have: "y"' → one line naming each field.
  fields="$(awk '
    match($0, /rego_type_error: undefined ref: /) {
      ref = substr($0, RSTART + RLENGTH); loc = substr($0, 1, RSTART - 3)
      sub(/^.*: /, "", loc); n = split(loc, parts, "/"); loc = parts[n]; have = ""; next_have = 1; next
    }
    next_have && /have: / { have = $0; sub(/^.*have: /, "", have); printf "%s (%s; no field %s)\n", ref, loc, have; next_have = 0 }
  ' <<<"$out" | sort -u)"
  if [[ -n "$fields" ]]; then
    while IFS= read -r f; do echo "check-policy-types: FAIL: undefined input field $f" >&2; done <<<"$fields"
    fail "$REGO_DIR reads input fields that docs/policy-input.schema.json does not define"
  fi
  fail "opa check --strict --schema $REGO_DIR"
fi
echo "check-policy-types: $REGO_DIR type-checks against the input contract"
