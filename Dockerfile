# PNA job image: python slim + pna_engine. Entrypoint `pna-engine`, default command `run-job`:
# the container reads its request from the environment (PNA_REQUEST, or PNA_MANIFEST +
# AWS_BATCH_JOB_ARRAY_INDEX), fetches inputs (s3/http/paths), runs the engine and uploads the
# export, run.json and status.json to PNA_RESULTS_URI. See pna_engine/jobrunner.py.
#
#   docker build -t pna-engine:0.1.0 .
#   docker run --rm -e PNA_REQUEST='{"place":"X","boundary":"s3://b/x.geojson"}' \
#       -e PNA_RESULTS_URI=s3://BUCKET/results/manual-1/ pna-engine:0.1.0
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PNA_SCRATCH=/tmp

WORKDIR /opt/pna
# Only the engine goes into the image (numpy/pandas/geopandas/shapely/pyogrio/osmium/scipy/
# rasterio/boto3 wheels bundle their native libraries: no compiler, no system GDAL).
# osmium-tool: cuts large (state/country) OSM extracts to the boundary before the Python import
RUN apt-get update && apt-get install -y --no-install-recommends osmium-tool \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY pna_engine ./pna_engine
RUN pip install . \
    && useradd --create-home --uid 1000 pna \
    && pna-engine --version

USER pna
WORKDIR /tmp
ENTRYPOINT ["pna-engine"]
CMD ["run-job"]
