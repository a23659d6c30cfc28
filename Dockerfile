# tenin application image: every `tenin serve|worker|migrate` container in
# docker-compose.yml runs from it.
FROM python:3.11-slim

# libgomp1: the OpenMP runtime LightGBM's wheel links against.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TENIN_DATA_DIR=/var/lib/tenin

WORKDIR /app

# Only what the app needs (the work tree may hold a large .venv and caches).
COPY pyproject.toml README.md alembic.ini ./
COPY shared ./shared
COPY services ./services
COPY tenin ./tenin
COPY migrations ./migrations
COPY models ./models

# Editable, so the code runs from /app: tenin finds alembic.ini and the model
# directory relative to the source tree (shared/config.py REPO_ROOT).
RUN pip install -e . \
 && useradd --system --create-home --home-dir /var/lib/tenin tenin \
 && chown -R tenin:tenin /var/lib/tenin

USER tenin

# docker-compose.yml gives each container its command (tenin serve|worker|migrate).
CMD ["tenin", "--help"]
