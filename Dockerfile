# pgward: build the TypeScript and the policy bundle, then a slim runtime image.
# syntax=docker/dockerfile:1
FROM golang:1.26-bookworm AS policy
WORKDIR /src
COPY wasm-build/go.mod wasm-build/go.sum wasm-build/
RUN cd wasm-build && go tool -n opa >/dev/null
COPY --from=node:20-bookworm-slim /usr/local/bin/node /usr/local/bin/node
COPY package.json package-lock.json ./
COPY node_modules/@open-policy-agent/opa-wasm/capabilities.json node_modules/@open-policy-agent/opa-wasm/capabilities.json
COPY scripts/build-policy.sh scripts/
COPY rego rego
ARG POLICY_REVISION=image
RUN PGWARD_POLICY_REVISION=$POLICY_REVISION scripts/build-policy.sh rego wasm-build/out/bundle.tar.gz

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gateway gateway
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/package.json package.json
COPY --from=policy /src/wasm-build/out/bundle.tar.gz wasm-build/out/bundle.tar.gz
USER node
EXPOSE 6432 9432
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
