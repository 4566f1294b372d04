# pgward — every step a fresh machine needs is here or in scripts/.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := /usr/local/go/bin:$(PATH)

NODE_STAMP := node_modules/.package-lock.json
BUNDLE := wasm-build/out/bundle.tar.gz

.PHONY: help deps system-deps build policy policy-test policy-ci lint typecheck unit integration test run bench clean

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

unit: deps ## unit tests beside the code
	npx jest --selectProjects unit

integration: build policy system-deps ## tests with real PostgreSQL, real clients, the real gateway
	npx jest --selectProjects integration --runInBand

policy-ci: build ## run the CI pipeline documented in docs/policy-ci.md, step by step, on the shipped captures
	node tests/policy-ci/run-pipeline.mjs

test: deps system-deps build policy typecheck lint policy-test unit integration policy-ci ## everything CI runs

run: build policy ## the gateway with the shipped policies in front of the local PostgreSQL
	node dist/cli.js serve --listen 127.0.0.1:6432 --upstream 127.0.0.1:5432 --admin-listen 127.0.0.1:9432 --bundle $(BUNDLE)

bench: build policy system-deps ## pgbench direct vs pgbouncer vs pgward, classification and eval micro-benchmarks
	@scripts/bench.sh

clean:
	rm -rf dist wasm-build/out
