# Multi-stage build: a static, pure-Go binary (SQLite is modernc, no cgo) on a
# distroless base that has CA certificates and runs as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/changegate ./cmd/changegate \
    && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/changegate /usr/local/bin/changegate
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV CHANGEGATE_DATA_DIR=/data \
    CHANGEGATE_LISTEN=:8080
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/changegate"]
CMD ["serve"]
