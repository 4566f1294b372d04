# syntax=docker/dockerfile:1
# pgward: the TypeScript build and the policy bundle in build stages, then a slim non-root runtime.
# Nothing is copied from the host's node_modules or dist (see .dockerignore); a fresh clone builds:
#   docker build -t pgward .
# `make image-test` runs this file's RUN steps as a script on a copy of the build context
# (tests/ops/dockerfile-check.sh), for machines without a container engine.

# ---- node modules from the lock file (dev dependencies included: the build needs tsc) ----
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# ---- the policy bundle: the OPA pinned in wasm-build/go.mod, checked against opa-wasm's builtins ----
FROM golang:1.26-bookworm AS policy
WORKDIR /src
COPY wasm-build/go.mod wasm-build/go.sum wasm-build/
RUN cd wasm-build && go tool -n opa >/dev/null
COPY --from=deps /usr/local/bin/node /usr/local/bin/node
COPY --from=deps /app/node_modules/@open-policy-agent/opa-wasm/capabilities.json node_modules/@open-policy-agent/opa-wasm/capabilities.json
# The input paths of the manifest: scripts/input-paths.js transpiles the analyser with typescript.
COPY --from=deps /app/node_modules/typescript node_modules/typescript
COPY gateway/src/policy/input-paths.ts gateway/src/policy/
COPY scripts/build-policy.sh scripts/input-paths.js scripts/
COPY rego rego
ARG POLICY_REVISION=image
RUN PGWARD_POLICY_REVISION=$POLICY_REVISION scripts/build-policy.sh rego wasm-build/out/bundle.tar.gz

# ---- TypeScript -> dist/, then production dependencies only ----
FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY gateway gateway
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- Bun, pinned as in the Makefile (BUN_VERSION), for the image that runs pgward on Bun ----
FROM node:20-bookworm-slim AS bun-install
ARG BUN_VERSION=1.4.5
WORKDIR /opt/bun
RUN echo '{"private": true}' >package.json && npm install --no-save --no-audit --no-fund bun@$BUN_VERSION && test "$(node_modules/.bin/bun --version)" = "$BUN_VERSION"

# ---- what both runtime targets hold: files owned by root and read-only to the process, which
# runs as node (uid 1000) ----
FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json package.json
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=policy /src/wasm-build/out/bundle.tar.gz wasm-build/out/bundle.tar.gz
USER 1000:1000
EXPOSE 6432 9432

# ---- run by Bun (`docker build --target bun`): ~25 % less CPU per transaction
# (docs/operations.md, Capacity and tuning) ----
FROM runtime AS bun
COPY --from=bun-install /opt/bun/node_modules/bun/bin/bun.exe /usr/local/bin/bun
ENTRYPOINT ["bun", "dist/cli.js"]
CMD ["serve"]

# ---- run by Node.js: the default target ----
FROM runtime
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
