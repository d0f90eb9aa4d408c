# syntax=docker/dockerfile:1
# governance-ledger: the service and its CLI, compiled to JavaScript (npm run build) so no TypeScript loader runs.

FROM node:20-slim AS dependencies
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary fits the platform
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-slim
ENV NODE_ENV=production \
    DATA_DIR=/var/lib/governance-ledger \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY projections ./projections
COPY console ./console
COPY scripts/build.mjs scripts/build-console.mjs ./scripts/
RUN node scripts/build.mjs
# the data folder belongs to the unprivileged user; a named volume mounted here inherits that
RUN mkdir -p /var/lib/governance-ledger && chown node:node /var/lib/governance-ledger && chmod 700 /var/lib/governance-ledger
USER node
VOLUME ["/var/lib/governance-ledger"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "--max-old-space-size=128", "dist/src/cli/run.js"]
CMD ["serve"]
