# diffrelay image: one binary, `capture` or `apply` chosen by the command.
FROM node:20-slim AS build
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

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/migrations ./migrations
USER node
ENTRYPOINT ["node", "bin/diffrelay.js"]
