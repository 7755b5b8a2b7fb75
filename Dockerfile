# The latency service by default: no TensorFlow, torch or runtimes. Build with
# --build-arg EXTRAS=agents,convert for a host agent (large: TensorFlow and torch).
FROM python:3.11-slim
ARG EXTRAS=service

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hwlat ./hwlat
COPY models ./models
COPY predictor ./predictor
COPY latency_api ./latency_api
COPY latency_service ./latency_service
COPY device_agents ./device_agents
COPY migrations ./migrations
RUN pip install ".[${EXTRAS}]"

RUN useradd --create-home hwlat
USER hwlat
# Exists in the image so that a volume mounted here belongs to hwlat (the agent's model cache).
RUN mkdir -p /home/hwlat/.cache/hwlat
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# Migrations run at start (hwlat serve --upgrade is the default).
CMD ["hwlat", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
