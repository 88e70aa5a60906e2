# Tracewire API image. No `# syntax=` line: the builder's own frontend is used, so the
# build fetches no frontend image (only the base image and the Python packages).
#
#   docker build -t tracewire .
#   docker run --rm -p 8000:8000 -v tracewire-data:/srv/data tracewire   # SQLite, dev settings
#
# Production settings (TRACEWIRE_ENVIRONMENT=prod, a real TRACEWIRE_JWT_SECRET,
# PostgreSQL) come from the environment; see deploy/compose.yaml (which puts a TLS proxy
# in front and publishes no API port) and deploy/tracewire.env.example.

# Builder and runtime must share the base image: the venv's `python` is a symlink to
# the base image's interpreter, and console-script shebangs point at /opt/venv.
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

# Bytecode is compiled here, at install time: the runtime user cannot write to the venv.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
# README.md is the project's `readme` in pyproject.toml: the build needs it.
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations

# A regular (non-editable) install: hatchling builds the wheel, which force-includes
# the top-level `migrations/` folder, so it lands in site-packages/migrations, where
# app/core/migrate.py looks for it (Path(app.__file__).parent.parent / "migrations").
RUN pip install .

# Fail the build if the installed package cannot find its migrations. Run from /
# so that `import app` resolves to site-packages, not to /build/app.
RUN cd / && python -c "\
from app.core.migrate import MIGRATIONS_DIR, head_revision; \
assert MIGRATIONS_DIR.is_relative_to('/opt/venv'), MIGRATIONS_DIR; \
assert (MIGRATIONS_DIR / 'env.py').is_file(), MIGRATIONS_DIR; \
assert head_revision(), 'no migration revisions found'; \
print('migrations at', MIGRATIONS_DIR, 'head', head_revision())"

# ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG APP_UID=10001
ARG APP_GID=10001

RUN groupadd --system --gid "${APP_GID}" tracewire \
 && useradd --system --uid "${APP_UID}" --gid "${APP_GID}" \
        --home-dir /srv --no-create-home --shell /usr/sbin/nologin tracewire \
 && mkdir -p /srv/data \
 && chown "${APP_UID}:${APP_GID}" /srv/data \
 && chmod 0750 /srv/data

# Owned by root and read-only for the service user: the code cannot be rewritten at run time.
COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRACEWIRE_HOST=0.0.0.0 \
    TRACEWIRE_PORT=8000 \
    TRACEWIRE_DATABASE_URL=sqlite+aiosqlite:////srv/data/tracewire.db

WORKDIR /srv
USER ${APP_UID}:${APP_GID}

# With the SQLite default, mount a volume at /srv/data to keep the database. A new
# named volume inherits the directory's owner (uid 10001); a bind-mounted host folder
# must be writable by uid 10001 itself.
EXPOSE 8000

# Healthy = ready: the process answers and reaches its database (/readyz answers 503
# otherwise). No curl in the slim image: probe with the standard library; urlopen raises
# on any non-2xx answer or connection error, which exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('TRACEWIRE_PORT', '8000'), timeout=4).close()"]

CMD ["tracewire", "serve"]
