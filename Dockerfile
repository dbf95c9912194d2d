# The runtime image of the Docker backend, clipper-runtime:<version>, for machines that reach a
# registry:  docker build -t clipper-runtime:$(node -p "require('./package.json').version") .
# Offline, `clipper image build` assembles an equivalent image from this machine's files instead
# (src/manager/docker/image-build.ts). Both put the project at /app, `node` and `python3` on the
# PATH, label python support with clipper.python=1, and default to serving a js model.
FROM node:20-slim

# The python runtime: Debian's python3 with numpy and pyzmq, as on the frontend's machine.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-numpy python3-zmq \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Production dependencies (esbuild among them: src/loader runs the TypeScript sources).
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

COPY src ./src
COPY python/clipper_container ./python/clipper_container

LABEL clipper.python=1
CMD ["node", "--import", "/app/src/loader/register.mjs", "/app/src/runtimes/js/main.ts"]
