# PNA job image: Python 3.11 + pna_engine in /opt/pna. Entrypoint `pna-engine`, default
# command `run-job`: the container reads its request from the environment (PNA_REQUEST, or
# PNA_MANIFEST + AWS_BATCH_JOB_ARRAY_INDEX), fetches inputs (s3/http/paths), runs the engine and
# uploads the export, run.json and status.json to PNA_RESULTS_URI (pna_engine/jobrunner.py).
#
#   docker build -t pna-engine:0.1.0 .          # or: python3 dev.py image (buildah, no daemon)
#   docker run --rm -e PNA_REQUEST='{"place":"X","boundary":"s3://b/x.geojson"}' \
#       -e PNA_RESULTS_URI=s3://BUCKET/results/manual-1/ pna-engine:0.1.0
#
# BASE: any Debian-based image with python3.11 (+ venv) and apt. `dev.py image` passes a local
# Debian bookworm root filesystem (Docker Hub unreachable); the default is the official image.
# Build secrets (optional, never stored in a layer): `ca.crt` (CA bundle for pip) and `pip.conf`
# (the host's index settings).
ARG BASE=python:3.11-slim

# ---- build stage: a virtual environment with the engine and its wheels (no compiler needed:
# numpy/pandas/scipy/shapely/pyproj/pyogrio/osmium/rasterio wheels bundle their native libraries).
# Left out: pip and setuptools, the packages' own test suites and pycountry's translations (the
# engine never imports or reads them). Bytecode is compiled with hashes that are never checked
# (the image is immutable; PYTHONDONTWRITEBYTECODE): no start-up ever recompiles a module,
# whatever the copied files' modification times.
FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml ./
COPY pna_engine ./pna_engine
# (README.md: the package's long description only; an empty one keeps README edits from
# changing the image)
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=ca.crt \
    touch README.md; \
    if [ -s /run/secrets/pip.conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip.conf; fi; \
    if [ -s /run/secrets/ca.crt ]; then export PIP_CERT=/run/secrets/ca.crt; fi; \
    python3 -m venv /opt/pna \
    && /opt/pna/bin/pip install --no-cache-dir --disable-pip-version-check --no-warn-script-location . \
    && /opt/pna/bin/pip uninstall --yes --quiet setuptools pip \
    && cd /opt/pna/lib/python3.11/site-packages \
    && find . -depth -type d -name tests -exec rm -rf {} + \
    && rm -rf pycountry/locales \
    && python3 -m compileall -q -f -j 0 --invalidation-mode unchecked-hash .

# ---- the image
FROM ${BASE}
ARG PNA_VERSION=0.1.0
LABEL org.opencontainers.image.title="pna-engine" \
      org.opencontainers.image.description="PNA: the Bicycle Network Analysis (BNA) as a batch job" \
      org.opencontainers.image.version="${PNA_VERSION}" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/pna/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/pna \
    PNA_SCRATCH=/tmp \
    PNA_CACHE_DIR=/tmp/pna-cache
# osmium-tool: cuts large (state/country) OSM extracts to the boundary before the Python import.
# The user `pna` (uid 1000) owns nothing but what it writes to /tmp; its home is read-only.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends osmium-tool \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
    && useradd --uid 1000 --user-group --no-create-home --home-dir /home/pna \
        --shell /usr/sbin/nologin pna \
    && install -d -m 0555 -o root -g root /home/pna
COPY --from=build /opt/pna /opt/pna
# the label and the package agree, and the entrypoint and osmium start
RUN test "$(pna-engine --version)" = "pna-engine ${PNA_VERSION}" && osmium --version > /dev/null

USER pna
WORKDIR /tmp
ENTRYPOINT ["pna-engine"]
CMD ["run-job"]
