# syntax=docker/dockerfile:1
#
# Container image of radkit-access-facade: a static binary on distroless,
# running as non-root.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t radkit-access-facade .
#
# SECURITY: inside a container the listeners are on 0.0.0.0 (see the ENV
# below), reachable by anything that can reach the pod. The facade holds the
# upstream credentials, so every caller must authenticate: configure caller
# keys and/or TLS, e.g. mount a keys file from a Secret and set
# RADKIT_FACADE_CALLER_KEYS_FILE (flag --caller-keys-file), as
# deploy/kubernetes/deployment.yaml does. Without caller authentication the
# facade refuses to start on a non-loopback address.
#
# The build flags below are also what cmd/radkit-access-facade/static_test.go
# builds with (it reads them from this file) to check that the binary is
# statically linked and carries VERSION; change them there and here alike.

# The build runs on the builder's own platform and cross-compiles, so that
# multi-platform builds (docker buildx --platform linux/amd64,linux/arm64)
# need no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS TARGETARCH
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum changes.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/radkit-access-facade ./cmd/radkit-access-facade

# distroless/static: CA certificates, tzdata and /etc/passwd with nonroot
# (65532), no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/radkit-access-facade /usr/local/bin/radkit-access-facade
USER nonroot:nonroot
# gRPC (with grpc.health.v1 for probes) and HTTP/JSON (/healthz, /readyz).
EXPOSE 9090 8080
ENV RADKIT_FACADE_GRPC_ADDR=0.0.0.0:9090 \
    RADKIT_FACADE_HTTP_ADDR=0.0.0.0:8080 \
    RADKIT_FACADE_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/radkit-access-facade"]
