# gslbd container image: build in the official Rust image, run in distroless (glibc, no
# shell), as a non-root user. Build: docker build -t gslbd .
# Run:   docker run -v $PWD/gslbd.toml:/etc/gslbd/gslbd.toml:ro -v gslbd-state:/var/lib/gslbd \
#          -e GSLBD_ADMIN_SECRET=... -p 53:53/udp -p 53:53/tcp -p 8053:8053 gslbd
# The config's ${VAR}s are read from the environment; listen on 0.0.0.0:53 and put the admin
# API on 0.0.0.0:8053 for the health check and the ports above. dist/check-dockerfile.py
# (in .ci/run) checks that this matches the systemd unit's paths.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin gslbd \
 && apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
 && setcap cap_net_bind_service=+ep target/release/gslbd \
 && install -d -o 65532 -g 65532 /state

FROM gcr.io/distroless/cc-debian12:nonroot
# Port 53 as a non-root user: the one file capability set above, nothing else. ICMP health
# checks use ping sockets, which Docker (20.10 and later) allows in every container by
# setting net.ipv4.ping_group_range; elsewhere pass --sysctl net.ipv4.ping_group_range="0
# 2147483647", or --cap-add NET_RAW with a file capability for raw sockets.
COPY --from=build /src/target/release/gslbd /usr/bin/gslbd
COPY --from=build --chown=65532:65532 /state /var/lib/gslbd
USER 65532:65532
WORKDIR /var/lib/gslbd
VOLUME ["/var/lib/gslbd"]
EXPOSE 53/udp 53/tcp 8053/tcp
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s CMD ["/usr/bin/gslbd", "probe", "http://127.0.0.1:8053/ready"]
ENTRYPOINT ["/usr/bin/gslbd"]
CMD ["run", "--config", "/etc/gslbd/gslbd.toml"]
