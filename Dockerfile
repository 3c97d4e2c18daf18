# FlexLive liveness service, CPU image. Same install path as CI: `pip install .`
# (the bundled model and face-detector weights ship inside the package).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/flexlive
COPY pyproject.toml README.md ./
COPY service ./service
COPY models ./models
COPY sensors ./sensors
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin liveness

USER liveness
WORKDIR /home/liveness
EXPOSE 8000
# /readyz is 200 only once the model is loaded and warmed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"]
CMD ["liveness", "serve", "--host", "0.0.0.0", "--port", "8000"]
