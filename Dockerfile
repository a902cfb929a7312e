# keyvol's image, for those who build with a registry at hand (docker build, podman build,
# buildah bud, docker buildx --platform linux/amd64,linux/arm64). The image holds the same files
# ./scripts/image assembles offline from this machine: the production binary `keyvol` (never the
# developer tools of keyvol-dev), the shared libraries it links and the loader, a CA bundle and
# an nsswitch.conf (hosts: files dns).
# No shell, no mount binary, no package manager: keyvol mounts tmpfs with mount(2).
#
#   docker build -t registry.example.com/keyvol:0.1.0 .

# Build stage: Debian bookworm with the Rust toolchain (the same Debian release CI builds on, so
# glibc matches). Only the keyvol package is built.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p keyvol --bin keyvol \
 && scripts/image-rootfs target/release/keyvol /rootfs

# The image: nothing but what the build stage assembled.
FROM scratch
COPY --from=build /rootfs/ /
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="keyvol" \
      org.opencontainers.image.description="Secrets Store CSI Driver, Azure Key Vault provider and azure/kv FlexVolume in one binary" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/keyvol"
# Root because the node plugin mounts tmpfs and writes into kubelet's directories; the chart
# documents why each privilege is needed.
USER 0:0
ENTRYPOINT ["/keyvol"]
