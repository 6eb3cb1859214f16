# revokebot container image.
#
#   docker build -t revokebot --build-arg VERSION=$(git describe --tags --always --dirty) .
#   docker run --env-file .env -v revokebot-data:/data revokebot
#   docker inspect --format '{{.State.Health.Status}}' <container>
#
# The binary is static (CGO_ENABLED=0; the SQLite driver is pure Go) and runs
# as the distroless "nonroot" user (65532). Requests are kept in the SQLite
# database on the /data volume.

# ---- build ------------------------------------------------------------------
FROM golang:1.26-bookworm AS build

WORKDIR /src

# Download modules in their own layer, so that it is rebuilt only when
# go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .

ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/revokebot ./cmd/revokebot

# The data directory, owned by nonroot, so that a new named volume mounted on
# /data is writable by the bot.
RUN mkdir -p /out/data && chown 65532:65532 /out/data

# ---- runtime ----------------------------------------------------------------
# distroless/static has CA certificates and tzdata, no shell, and a nonroot user.
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
# The licence is in LICENSE (Apache-2.0, an SPDX identifier).
LABEL org.opencontainers.image.title="revokebot" \
      org.opencontainers.image.description="Slack bot that revokes a user's Cloudflare Zero Trust (Access) sessions after a second person approves." \
      org.opencontainers.image.source="https://github.com/revokebot/revokebot" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=build /out/revokebot /revokebot
COPY --from=build --chown=65532:65532 /out/data /data

ENV REVOKEBOT_DATABASE=/data/revokebot.db
VOLUME /data

# /healthz, /readyz and /metrics. Nothing needs this port for the bot itself
# (Socket Mode is an outbound connection); it is for health checks and
# Prometheus.
ENV REVOKEBOT_HTTP_ADDR=:8080
EXPOSE 8080

# Exec form: distroless has no shell. `revokebot healthcheck` asks /healthz on
# REVOKEBOT_HTTP_ADDR; if an operator sets that variable to empty (endpoint
# off), the check fails and the container shows as unhealthy: then run it with
# --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/revokebot", "healthcheck"]

USER nonroot
ENTRYPOINT ["/revokebot"]
