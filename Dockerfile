# cdcd container image: one static binary on distroless, running as nonroot.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t cdcd .
#   docker run --rm -v $PWD/config.yaml:/etc/cdcd/config.yaml:ro -e CDCD_HTTP_LISTEN=0.0.0.0:9187 -p 9187:9187 cdcd
#
# http.listen must not be loopback inside a container, or probes and Prometheus cannot reach
# /healthz, /readyz and /metrics: config.example.yaml reads it from CDCD_HTTP_LISTEN.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The same build line as the Makefile's GO_BUILD_FLAGS (cmd/cdcd/dockerfile_test.go checks it).
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/cdcd ./cmd/cdcd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cdcd /cdcd
USER nonroot
EXPOSE 9187
# Probes http://127.0.0.1:9187/healthz, or $CDCD_HEALTHCHECK_URL when http.listen uses another port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["/cdcd","healthcheck"]
ENTRYPOINT ["/cdcd"]
CMD ["run","--config","/etc/cdcd/config.yaml"]
