# syntax=docker/dockerfile:1
# The image every pipeline step, the CronJob target and the controller run: the ai-operator
# command as a non-root user, fit for a read-only root filesystem (the only writable place is
# /tmp, an emptyDir in every manifest).

# 1. Build the wheel of this project, and the wheels of everything it depends on.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY jobs ./jobs
COPY pipelines ./pipelines
COPY ai_operator ./ai_operator
COPY examples ./examples
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# 2. Install that same wheel, offline, into a virtual environment; nothing else is copied.
FROM python:3.11-slim
LABEL org.opencontainers.image.title="ai-operator" \
      org.opencontainers.image.description="Let an AI settle GitHub pull requests safely" \
      org.opencontainers.image.licenses="MIT"
ENV VIRTUAL_ENV=/opt/ai-operator \
    PATH=/opt/ai-operator/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_FORMAT=json
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/ai-operator \
    && /opt/ai-operator/bin/pip install --no-cache-dir --no-index --find-links=/wheels \
       /wheels/ai_operator-*.whl \
    && ai-operator --help >/dev/null
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["ai-operator"]
CMD ["--help"]
