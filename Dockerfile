# The image every pipeline step and the CronJob target run: the ai-operator command, non-root,
# fit for a read-only root filesystem (writes go to the /tmp emptyDir the manifests mount).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY jobs ./jobs
COPY pipelines ./pipelines
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOG_FORMAT=json
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["ai-operator"]
CMD ["--help"]
