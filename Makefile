# pgward — every step a fresh machine needs is here or in scripts/.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := /usr/local/go/bin:$(PATH)

NODE_STAMP := node_modules/.package-lock.json
BUNDLE := wasm-build/out/bundle.tar.gz

.PHONY: help deps system-deps build policy policy-test policy-ci lint typecheck unit integration drivers test run bench fuzz clean \
	manifests-tool manifests-test rules-test image-test test-results-clean integration-bun

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

system-deps: ## Debian packages the tests and benchmarks use (pgbouncer, tcpdump)
	@scripts/system-deps.sh

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

deps: $(NODE_STAMP) ## install node modules from the lock file

build: deps ## compile TypeScript into dist/
	npm run build --silent

policy: ## build rego/ into wasm-build/out/bundle.tar.gz (pinned OPA, wasm target)
	@scripts/build-policy.sh

policy-test: ## opa fmt --fail, opa check --strict, opa test with a coverage floor
	@scripts/test-policy.sh

typecheck: deps
	npm run typecheck --silent

lint: deps ## eslint + prettier --check
	npm run lint --silent

unit: deps build ## unit tests beside the code (one measures the built classifier in a fresh process)
	@mkdir -p .tmp/test-results
	npx jest --selectProjects unit --json --outputFile=.tmp/test-results/unit.json

integration: build policy system-deps manifests-tool ## tests with real PostgreSQL, real clients, the real gateway
	@mkdir -p .tmp/test-results
	npx jest --selectProjects integration --runInBand --json --outputFile=.tmp/test-results/integration.json

# Bun, the second supported runtime: pinned, installed from the npm registry into .tmp/bun (not a
# project dependency: `make run` and the default image use Node.js; the Dockerfile's `bun` target
# pins the same version).
BUN_VERSION := 1.4.5
BUN := .tmp/bun/node_modules/.bin/bun

$(BUN):
	@mkdir -p .tmp/bun && echo '{"private": true}' >.tmp/bun/package.json
	npm install --no-save --no-audit --no-fund --prefix .tmp/bun bun@$(BUN_VERSION)
	@$(BUN) --version | grep -qx '$(BUN_VERSION)' || { echo "bun $(BUN_VERSION) did not install"; exit 1; }

integration-bun: build policy system-deps manifests-tool $(BUN) ## the integration suite again, every gateway and CLI process it starts running under Bun
	@mkdir -p .tmp/test-results
	PGWARD_TEST_RUNTIME=bun PGWARD_BUN=$(CURDIR)/$(BUN) npx jest --selectProjects integration --runInBand --json --outputFile=.tmp/test-results/integration-bun.json

drivers: build system-deps ## real drivers' own test suites (lib/pq), directly and through pgward: same results required
	@scripts/driver-suite.sh

policy-ci: build ## run the CI pipeline documented in docs/policy-ci.md, step by step, on the shipped captures
	node tests/policy-ci/run-pipeline.mjs

test: test-results-clean deps system-deps build policy typecheck lint policy-test manifests-test rules-test unit integration integration-bun policy-ci drivers ## everything CI runs, closing on one line of counts
	@node scripts/test-summary.js

test-results-clean:
	@rm -rf .tmp/test-results && mkdir -p .tmp/test-results

# ---- deployment artefacts (deploy/, Dockerfile): validated offline ----
MANIFESTS_TOOL := .tmp/bin/pgward-validate-manifests
MANIFEST_VARIANTS := deploy/kubernetes/base $(wildcard deploy/kubernetes/overlays/*)

manifests-tool: ## build the manifest validator (kustomize + k8s.io/api, pinned in deploy/validate/go.mod; downloads modules)
	@mkdir -p .tmp/bin
	cd deploy/validate && go build -o ../../$(MANIFESTS_TOOL) .

manifests-test: manifests-tool ## render every kustomize variant and decode each object strictly (no network)
	$(MANIFESTS_TOOL) -out .tmp/manifests $(MANIFEST_VARIANTS)

rules-test: ## promtool check rules + promtool test rules (one case per alert)
	@command -v promtool >/dev/null || { echo "promtool not found: make system-deps"; exit 1; }
	promtool check rules deploy/prometheus-rules.yaml
	promtool test rules deploy/prometheus-rules.test.yaml

image-test: deps ## the Dockerfile's shape, .dockerignore, and its RUN steps run as a script on a copy of the build context (no container engine; also part of integration)
	npx jest tests/ops/dockerfile.test.ts --selectProjects integration

run: build policy ## the gateway with the shipped policies in front of the local PostgreSQL
	node dist/cli.js serve --listen 127.0.0.1:6432 --upstream 127.0.0.1:5432 --admin-listen 127.0.0.1:9432 --bundle $(BUNDLE)

bench: build policy system-deps $(BUN) ## pgbench direct vs pgbouncer vs pgward (Node.js and Bun), classification and eval micro-benchmarks
	@scripts/bench.sh

fuzz: deps ## differential fuzzer, long run: pgward's SQL reading vs what PostgreSQL runs (FUZZ_RUNS, FUZZ_SEED)
	FUZZ_RUNS=$${FUZZ_RUNS:-2000} FUZZ_SEED=$${FUZZ_SEED:-$$(date +%s)} npx jest tests/fuzz --runInBand

clean:
	rm -rf dist wasm-build/out
