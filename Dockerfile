# The tracker worker image: `docker compose up` runs two of these (tracker-1, tracker-2) in
# one consumer group. Same command as `make run` starts locally: `tracker worker`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies are pinned in pyproject.toml; every one of them ships a wheel, so the slim
# image needs no compiler.
COPY pyproject.toml ./
COPY schemas ./schemas
COPY services ./services
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/tracker --create-home tracker
# The bundled sample, to load it from inside the deployment:
#   docker compose exec tracker-1 tracker produce /app/data/sample.jsonl --allow-invalid
COPY data/sample.jsonl ./data/sample.jsonl

# Faust keeps its data directory relative to the working directory; TRACKER_DATA_DIR holds
# the tracker's own files. Both live on the volume mounted at /var/lib/tracker.
WORKDIR /var/lib/tracker
ENV TRACKER_DATA_DIR=/var/lib/tracker \
    TRACKER_WEB_BIND=0.0.0.0 \
    TRACKER_WEB_PORT=6066
USER tracker
EXPOSE 6066

# /health/ answers 200 only once the tables are recovered and no rebalance is running.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TRACKER_WEB_PORT', '6066') + '/health/', timeout=4)"]

ENTRYPOINT ["tracker"]
CMD ["worker"]
