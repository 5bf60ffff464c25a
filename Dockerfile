# crm-hub: `hub serve` as a non-root user on port 8080.
#   docker build -t crm-hub .
#   docker run --rm -p 8080:8080 -e HUB_TELEPHONY_GENERIC_SECRET=change-me crm-hub
# Without HUB_DATABASE_URL the data is a SQLite file in the /var/lib/crm-hub volume;
# docker-compose.yml runs it with PostgreSQL instead.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 hub \
 && useradd --system --uid 10001 --gid hub --home-dir /var/lib/crm-hub --create-home hub

COPY . /src
RUN pip install /src && rm -rf /src

USER hub
WORKDIR /var/lib/crm-hub
VOLUME ["/var/lib/crm-hub"]

ENV HUB_HOST=0.0.0.0 \
    HUB_PORT=8080
EXPOSE 8080

# slim has no curl: ask /healthz with the Python that runs the hub (any non-2xx answer fails)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HUB_PORT', '8080'), timeout=4)" || exit 1

CMD ["hub", "serve"]
