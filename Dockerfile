# proxmox-manager: one image for the worker and the API (the compose command picks the role).
# Debian (glibc) rather than Alpine: Temporal's native core and the SWC bundler the worker
# uses for workflow code ship prebuilt for glibc.

FROM node:20.20.2-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs an install script (native parts ship prebuilt), so none runs.
# Dev dependencies stay: the TypeScript sources run through tsx, as in development.
# npm install is the fallback only for npm ci refusing the lockfile over other platforms'
# optional binaries (npm/cli#9846); it installs the same locked versions.
RUN npm ci --ignore-scripts --no-audit --no-fund \
    || npm install --ignore-scripts --no-audit --no-fund

FROM node:20.20.2-bookworm-slim
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# What is left out (tests, simulator, docs, local data, secrets) is listed in .dockerignore.
COPY . .
RUN mkdir -p /var/lib/proxmox-manager /etc/proxmox-manager \
    && chown node:node /var/lib/proxmox-manager
ENV NODE_ENV=production \
    PM_CONFIG=/etc/proxmox-manager/config.yaml
# The image's unprivileged `node` user (uid 1000): secrets mounted for it must be readable by 1000.
USER node
CMD ["node", "--import", "tsx", "worker/main.ts"]
