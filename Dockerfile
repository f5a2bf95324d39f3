# Multi-stage build: a static, pure-Go binary (SQLite is modernc, no cgo) on a
# distroless base that has CA certificates and runs as a non-root user.
#
# Both bases are pinned by digest, the tag beside it: the tag says what the
# image is, the digest decides which image it is. Update them together with
#   docker buildx imagetools inspect golang:1.26-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot
# (or let Dependabot's docker ecosystem do it).

# golang:1.26-bookworm
FROM golang:1.26-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d AS build
# The image says GOTOOLCHAIN=local; auto lets an older 1.26.x base fetch the
# exact toolchain go.mod names (checksummed by the Go checksum database).
ENV GOTOOLCHAIN=auto
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/changegate ./cmd/changegate \
    && mkdir -p /out/data

# gcr.io/distroless/static-debian12:nonroot
FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
COPY --from=build /out/changegate /usr/local/bin/changegate
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV CHANGEGATE_DATA_DIR=/data \
    CHANGEGATE_LISTEN=:8080
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/changegate"]
CMD ["serve"]
