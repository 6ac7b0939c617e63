# sparse-bert-serve: the inference server image.
#
#   docker build -t sparse-bert-serve .
#   docker run --rm -p 8080:8080 -v "$PWD/models:/models:ro" sparse-bert-serve
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/checkpoints/my-ckpt:/ckpt:ro" -v "$PWD/models:/models" \
#     sparse-bert-serve convert /ckpt --models-dir /models
#
# Build arguments:
#   BASE_IMAGE  a Debian (glibc) Node 20 image with npm and a `node` user of uid/gid 1000, like the official one.
#               Where no registry is reachable, docker/build-base-image.sh builds a local stand-in under this name.
#   MODELS_SRC  a folder of converted models inside the build context to bake into /models (default: none; models
#               come from a volume mounted at /models). `models/` itself is in .dockerignore: convert into another
#               folder, e.g. `npm run convert -- <ckpt> --models-dir image-models`, then `--build-arg MODELS_SRC=image-models`.
#               (The build stage copies the whole context, so it sees that folder too: changing it re-runs tsc.)
# Configuration is by environment variable (HOST, PORT, MODELS_DIR, THREADS, MAX_BATCH_DELAY_MS, ...; `serve --help`).
ARG BASE_IMAGE=node:20-bookworm-slim

# ---- deps: every dependency from the lock file, and the sparse engine (C++ addon) that npm ci's install script
# builds with node-gyp against the base image's Node headers (/usr/local/include/node). onnxruntime-node's
# post-install would download CUDA binaries, which CPU inference does not need (and which fails offline), so it is
# skipped (.npmrc says so too). The compiler stays in the build stages; the runtime image gets only the .node file.
FROM ${BASE_IMAGE} AS deps
WORKDIR /app
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    NPM_CONFIG_AUDIT=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_UPDATE_NOTIFIER=false
COPY package.json package-lock.json .npmrc ./
COPY engine ./engine
# The install never fails for want of the engine (the server would fall back to onnxruntime); the image must not
# ship without it, so the build stops here if it did not build.
RUN npm ci \
 && test -f engine/build/Release/sbs_engine.node || { cat engine/build/build.log 2> /dev/null | tail -30; exit 1; }

# ---- build: TypeScript -> dist/
FROM deps AS build
COPY . .
RUN npm run build

# ---- prod-deps: production dependencies only, from the npm cache the deps stage filled (no second download).
# onnxruntime-node ships binaries for every platform; only this one's stays (-220 MB).
FROM deps AS prod-deps
RUN npm ci --omit=dev --offline --ignore-scripts \
 && keep="linux/$(node -p process.arch)" \
 && for dir in node_modules/onnxruntime-node/bin/napi-v*/*/*; do \
      case "$dir" in */"$keep") ;; *) rm -rf "$dir" ;; esac; \
    done \
 && test -e node_modules/onnxruntime-node/bin/napi-v*/"$keep"/onnxruntime_binding.node

# ---- runtime
FROM ${BASE_IMAGE} AS runtime
ARG MODELS_SRC=docker/no-models
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    MODELS_DIR=/models
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=deps /app/engine/build/Release/sbs_engine.node ./engine/build/Release/sbs_engine.node
COPY package.json ./
# Baked models (if any) stay owned by root, read-only to the server; /models itself belongs to the server's user so
# `convert` can write into a fresh named volume mounted there.
COPY ${MODELS_SRC} /models/
RUN chown 1000:1000 /models
# The official image's `node` user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080
# Healthy = ready: models loaded and warmed, not draining. Node itself asks /readyz (the image has no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "const h = process.env.HOST || '127.0.0.1'; const host = h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? '[' + h + ']' : h; fetch('http://' + host + ':' + (process.env.PORT || 8080) + '/readyz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1));"]
# Node is PID 1 and runs the server directly: `docker stop` (SIGTERM) reaches the server, which stops taking work,
# finishes queued and running requests and exits 0 within SHUTDOWN_TIMEOUT_MS (default 30 s: use `docker stop -t 35`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["serve"]
