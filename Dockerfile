# FlexLive liveness service. Two targets, one install path (the one CI exercises:
# `pip install .`; the bundled model and face-detector weights ship inside the package):
#   docker build -t flexlive:cpu .                    # default: slim CPU runtime (last stage)
#   docker build --target gpu -t flexlive:gpu .       # CUDA runtime + onnxruntime-gpu
#   docker build --target daemon -t flexlive:daemon . # camera daemon with the RealSense SDK
# Both run as a non-root user, keep nothing writable but /tmp, and report /readyz.

# ---- source: only what the package needs, shared by both targets ----------------------
FROM python:3.11-slim AS source
WORKDIR /src
COPY pyproject.toml README.md ./
COPY flexlive ./flexlive
COPY service ./service
COPY models ./models
COPY sensors ./sensors

# ---- gpu: CUDA 12 + cuDNN 9 runtime (what onnxruntime-gpu 1.20+ links against) ----------
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS gpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    LIVENESS_PROVIDERS=cuda

# Ubuntu's Python is externally managed (PEP 668): the service gets its own venv. Distro
# packages follow the base image's release rather than exact pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin liveness

WORKDIR /opt/flexlive
COPY --from=source /src ./
# onnxruntime and onnxruntime-gpu install the same module: the runtime dependency comes in
# with the package, then is replaced by the `gpu` extra's wheel (which also runs on CPU).
# Versions are bounded by pyproject.toml, the same ranges CI installs.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[gpu]" \
    && pip uninstall -y onnxruntime onnxruntime-gpu \
    && pip install --no-cache-dir --no-deps "onnxruntime-gpu>=1.20,<2"

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001
WORKDIR /home/liveness
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"]
CMD ["liveness", "serve", "--host", "0.0.0.0", "--port", "8000"]

# ---- daemon: the CPU runtime plus the RealSense SDK (and libusb it loads) --------------
FROM python:3.11-slim AS daemon

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libusb-1.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/flexlive
COPY --from=source /src ./
# The container user joins plugdev so USB device nodes passed in by compose are readable.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[realsense]" \
    && useradd --create-home --uid 10001 --groups plugdev --shell /usr/sbin/nologin liveness

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001
WORKDIR /home/liveness
EXPOSE 8081
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=4).status == 200 else 1)"]
CMD ["liveness", "daemon", "--source", "realsense", "--host", "0.0.0.0", "--port", "8081"]

# ---- cpu (default): slim Python with the CPU onnxruntime --------------------------------
FROM python:3.11-slim AS cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/flexlive
COPY --from=source /src ./
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin liveness

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001
WORKDIR /home/liveness
EXPOSE 8000
# /readyz is 200 only once the model is loaded and warmed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"]
CMD ["liveness", "serve", "--host", "0.0.0.0", "--port", "8000"]
