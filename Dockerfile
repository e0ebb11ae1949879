# diffrelay image: one binary, the command (`node`, `capture`, `apply`, ...) chooses the role.
# The bases are build arguments: the public Node image by default; without a registry,
# `npm run images` builds local ones (scripts/images) from Debian's packages and this machine's Node.
ARG BUILD_IMAGE=node:20-slim
ARG RUNTIME_IMAGE=node:20-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Dev dependencies are needed to compile; pruned below so the runtime layer carries production ones only.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY connectors ./connectors
COPY operations ./operations
COPY app ./app
COPY migrations ./migrations
RUN npm run build && npm prune --omit=dev

FROM ${RUNTIME_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/migrations ./migrations
# Both bases have this user (uid 1000): the process never runs as root.
USER node
ENTRYPOINT ["node", "bin/diffrelay.js"]
