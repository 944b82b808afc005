# syntax=docker/dockerfile:1
#
# ml-model-exporter image. By default it runs the embedded demo on :9747 (no files or
# services needed); for real logs run `run --config.file /etc/ml-model-exporter/config.yml`
# (see examples/config.yml). The same image runs the retraining webhook receiver:
# `retrain-hook --config.file ...`.
#
#   docker build -t ml-model-exporter .
#   docker run --rm -p 9747:9747 ml-model-exporter

FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
# An unprivileged user; /secrets is where compose's retrain-token service writes the
# webhook token (a named volume takes this folder's owner when first created).
RUN pip install /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --create-home \
        --home-dir /var/lib/ml-model-exporter --shell /usr/sbin/nologin exporter \
    && install -d -o exporter -g exporter -m 0755 /secrets
USER 10001:10001
WORKDIR /var/lib/ml-model-exporter
EXPOSE 9747 9748
ENTRYPOINT ["ml-model-exporter"]
CMD ["demo", "--web.listen-address", ":9747"]
