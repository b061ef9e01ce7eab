# One image for api, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/idr

COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
COPY sql ./sql
COPY openapi ./openapi
# The real warehouse drivers (Snowflake, BigQuery, Databricks) and the DataDog exporter's
# client, so IDR_TARGETS and IDR_METRICS_PUSH_EXPORTERS work in the image; no test stand-ins.
RUN pip install '.[warehouses,datadog]' && useradd --create-home --uid 10001 idr && mkdir -p /data && chown idr /data

USER idr
ENV IDR_SQL_DIR=/srv/idr/sql \
    IDR_DUCKDB_PATH=/data/idr.duckdb \
    IDR_API_HOST=0.0.0.0
EXPOSE 8000
# Default: the API. Workers: celery -A workers.celery_app worker --pool threads; beat: ... beat
CMD ["uvicorn", "app.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
