# The latency service by default: no TensorFlow, torch or runtimes. Build with
# --build-arg EXTRAS=agents,convert for a host agent (large: TensorFlow and torch).
FROM python:3.11-slim
ARG EXTRAS=service

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY requirements/service.lock ./requirements/
# The locked versions only, each checked against its hash (make lock regenerates the file).
RUN pip install --require-hashes -r requirements/service.lock
COPY hwlat ./hwlat
COPY models ./models
COPY predictor ./predictor
COPY latency_api ./latency_api
COPY latency_service ./latency_service
COPY device_agents ./device_agents
COPY migrations ./migrations
# The service image installs exactly the hash-checked lock. An agent image (EXTRAS with
# agents,convert: TensorFlow, torch, runtimes) adds those extras on top, resolved at build time:
# the lock pins torch to the CPU wheel of the development machines, which no index serves.
RUN if [ "${EXTRAS}" = "service" ]; then \
      pip install --no-deps . ; \
    else \
      pip install ".[${EXTRAS}]" ; \
    fi

RUN useradd --create-home hwlat
USER hwlat
# Exists in the image so that a volume mounted here belongs to hwlat (the agent's model cache).
RUN mkdir -p /home/hwlat/.cache/hwlat
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# Migrations run at start (hwlat serve --upgrade is the default).
CMD ["hwlat", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
