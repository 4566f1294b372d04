#!/usr/bin/env bash
# make bench: see scripts/bench.js for what is measured. Needs the local PostgreSQL on 5432.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node scripts/bench.js "$@"
