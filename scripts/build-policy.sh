#!/usr/bin/env bash
# Build a Rego directory into an OPA wasm bundle with the OPA version pinned in wasm-build/go.mod.
#
#   scripts/build-policy.sh [REGO_DIR] [OUT_FILE]
#
# Defaults: REGO_DIR=rego, OUT_FILE=wasm-build/out/bundle.tar.gz. Relative paths are taken from
# the current directory. *_test.rego and hidden files are left out; data.json files are bundled.
# The build is checked against the builtins @open-policy-agent/opa-wasm implements, so a builtin the
# gateway cannot run fails here and not at run time.
#
# Revision (.manifest): $PGWARD_POLICY_REVISION when set; for the repository's rego/ directory
# `git describe --always --dirty`, with the content hash appended when the tree is dirty
# (<describe>-dirty-<sha256 prefix of the policy sources and data>, so two different uncommitted
# policies never share a revision), or content-<sha256 prefix> without git; for any other directory
# <dirname>-<sha256 prefix of its sources>. Entrypoint: $PGWARD_ENTRYPOINT (default pgward/decision).
# The manifest's metadata.opa_version records the OPA that built the bundle (GET /v1/bundle shows it),
# and metadata.pgward.input_paths the input paths the policy can read, derived from the Rego AST
# (`opa parse --format json` of every bundled module, gateway/src/policy/input-paths.ts through
# scripts/input-paths.js): the gateway builds only those fields and keys its decision cache on them.
#
# Prints one line, "<OUT_FILE> revision <revision>", and exits non-zero with a reason on failure.
set -euo pipefail

die() {
  echo "build-policy: $*" >&2
  exit 1
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="/usr/local/go/bin:$PATH"

[[ $# -le 2 ]] || die "usage: scripts/build-policy.sh [REGO_DIR] [OUT_FILE]"
REGO_DIR="${1:-$ROOT/rego}"
OUT_FILE="${2:-$ROOT/wasm-build/out/bundle.tar.gz}"
ENTRYPOINT="${PGWARD_ENTRYPOINT:-pgward/decision}"
SDK_CAPABILITIES="$ROOT/node_modules/@open-policy-agent/opa-wasm/capabilities.json"

[[ -d "$REGO_DIR" ]] || die "policy directory not found: $REGO_DIR"
REGO_DIR="$(cd "$REGO_DIR" && pwd)"
mkdir -p "$(dirname "$OUT_FILE")" || die "cannot create the directory of $OUT_FILE"
OUT_FILE="$(cd "$(dirname "$OUT_FILE")" && pwd)/$(basename "$OUT_FILE")"

[[ -n "$(find "$REGO_DIR" -name '*.rego' ! -name '*_test.rego' -print -quit)" ]] ||
  die "no .rego files (other than tests) in $REGO_DIR"
command -v go >/dev/null || die "go not found (the pinned OPA is built with 'go tool opa' in wasm-build/)"
command -v node >/dev/null || die "node not found (needed to read the opa-wasm capabilities)"
[[ -f "$SDK_CAPABILITIES" ]] || die "$SDK_CAPABILITIES not found: run 'make deps' first"

OPA="$(cd "$ROOT/wasm-build" && go tool -n opa)" || die "cannot build the pinned OPA (cd wasm-build && go tool opa)"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# The SDK's capabilities.json lists the builtins it implements but no language features; OPA 1.x
# refuses to parse v1 Rego against capabilities without the rego_v1 feature, so add it.
node - "$SDK_CAPABILITIES" "$TMP/capabilities.json" <<'EOF' || die "$SDK_CAPABILITIES is not an OPA capabilities file"
const fs = require('fs');
const [src, dst] = process.argv.slice(2);
const caps = JSON.parse(fs.readFileSync(src, 'utf8'));
if (!Array.isArray(caps.builtins) || caps.builtins.length === 0 || !caps.builtins.every((b) => typeof b.name === 'string')) {
  console.error('no "builtins" array of named builtins');
  process.exit(1);
}
const features = new Set(Array.isArray(caps.features) ? caps.features : []);
features.add('rego_v1');
caps.features = [...features].sort();
fs.writeFileSync(dst, JSON.stringify(caps));
EOF

content_hash() {
  (
    cd "$REGO_DIR"
    find . -type f \( -name '*.rego' -o -name '*.json' -o -name '*.yaml' -o -name '*.yml' \) \
      ! -name '*_test.rego' ! -path '*/.*' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
  ) | sha256sum | cut -c1-12
}

if [[ -n "${PGWARD_POLICY_REVISION:-}" ]]; then
  REVISION="$PGWARD_POLICY_REVISION"
elif [[ "$REGO_DIR" == "$ROOT/rego" ]]; then
  REVISION="$(git -C "$ROOT" describe --always --dirty 2>/dev/null)" || REVISION="content-$(content_hash)"
  [[ "$REVISION" != *-dirty ]] || REVISION="$REVISION-$(content_hash)"
else
  REVISION="$(basename "$REGO_DIR")-$(content_hash)"
fi

OPA_VERSION="$("$OPA" version | sed -n 's/^Version: //p')"
[[ -n "$OPA_VERSION" ]] || die "cannot read the version of $OPA"

# The bundle is built from a copy of the sources (tests and hidden files left out) with a
# .manifest of our own, which opa build keeps, so that metadata.opa_version reaches the bundle.
SRC="$TMP/src"
mkdir -p "$SRC"
(cd "$REGO_DIR" && find . -type f ! -name '*_test.rego' ! -path '*/.*' -print0 |
  xargs -0 -r cp --parents -t "$SRC") || die "cannot copy $REGO_DIR"
# data.pgward.input_options (the hand-written predecessor of the derived input paths) is refused
# here as it is at load (PGWARD_ERR_BUNDLE_INPUT_OPTIONS), so that it fails where it is written.
(cd "$SRC" && find . -type f -name data.json -print0 | xargs -0 -r node -e '
const fs = require("fs");
for (const f of process.argv.slice(1)) {
  const at = f.replace(/^\.\//, "").split("/").slice(0, -1);
  let v = JSON.parse(fs.readFileSync(f, "utf8"));
  const path = [...at];
  while (path.length > 0 && v !== null) v = { [path.pop()]: v };
  if (v && v.pgward && typeof v.pgward === "object" && "input_options" in v.pgward) {
    console.error(f + ": data.pgward.input_options is no longer supported: remove it; the input paths the policy reads are derived from the Rego and recorded in the manifest (metadata.pgward.input_paths)");
    process.exit(1);
  }
}') || die "data.pgward.input_options in $REGO_DIR (PGWARD_ERR_BUNDLE_INPUT_OPTIONS at load)"

mkdir -p "$TMP/ast"
n=0
while IFS= read -r -d '' module; do
  n=$((n + 1))
  "$OPA" parse --format json "$module" >"$TMP/ast/$n.json" 2>"$TMP/parse.log" || {
    cat "$TMP/parse.log" >&2
    die "opa parse failed for ${module#"$SRC"/}"
  }
done < <(find "$SRC" -type f -name '*.rego' -print0 | LC_ALL=C sort -z)
INPUT_PATHS="$(node "$ROOT/scripts/input-paths.js" "$TMP"/ast/*.json)" || die "cannot derive the input paths of $REGO_DIR"
node -e 'process.stdout.write(JSON.stringify({ revision: process.argv[1], metadata: { opa_version: process.argv[2], pgward: { input_paths: JSON.parse(process.argv[3]) } } }))' \
  "$REVISION" "$OPA_VERSION" "$INPUT_PATHS" >"$SRC/.manifest"

# -b: the directory is the bundle root, so data.json maps to data and file names stay relative.
if ! (cd "$SRC" && "$OPA" build -b . -t wasm -e "$ENTRYPOINT" \
  --capabilities "$TMP/capabilities.json" --revision "$REVISION" \
  -o "$TMP/bundle.tar.gz") >"$TMP/opa.log" 2>&1; then
  cat "$TMP/opa.log" >&2
  if grep -q 'undefined function' "$TMP/opa.log"; then
    die "opa build failed for $REGO_DIR: a function it calls is undefined — either a builtin @open-policy-agent/opa-wasm does not implement (see $SDK_CAPABILITIES), or a function defined only in a test file (test files must end in _test.rego to be left out of the bundle)"
  fi
  die "opa build failed for $REGO_DIR"
fi

mv -f "$TMP/bundle.tar.gz" "$OUT_FILE"
echo "$OUT_FILE revision $REVISION"
