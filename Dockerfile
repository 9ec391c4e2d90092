# syntax=docker/dockerfile:1
# searchgate in a container: a release build on Debian 12, run on distroless (glibc, no shell)
# as a non-root user. deploy/README.md, "Running it", says what to set and how to run it:
#   docker build -t searchgate .
#   docker run -d --name searchgate -p 127.0.0.1:10000:10000 -v searchgate-state:/var/lib/searchgate \
#     --stop-timeout 30 --env-file searchgate.env searchgate
# On 0.0.0.0 the server refuses to start until the environment names a real identity provider
# (SEARCHGATE_AUTH__PROVIDER=oidc or scalekit) or, on a trusted network only,
# SEARCHGATE_AUTH__EMBEDDED__ALLOW_REMOTE=true; and SEARCHGATE_SERVER__PUBLIC_URL, always.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target directory are cache mounts (kept between builds, not in the image),
# so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin searchgate \
    && install -D -m 0755 target/release/searchgate /out/searchgate \
    && install -d -m 0700 /out/state

# glibc, libgcc_s and CA certificates: what the binary links dynamically (aws-lc and SQLite are
# built in). The nonroot user is 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/searchgate /usr/local/bin/searchgate
# The state directory, owned by the user that writes the SQLite file into it; a named volume
# starts as a copy of it (a bind-mounted host folder must belong to 65532 instead).
COPY --from=build --chown=65532:65532 /out/state /var/lib/searchgate
USER 65532:65532
WORKDIR /var/lib/searchgate
VOLUME ["/var/lib/searchgate"]
# Every interface of the container; PORT alone does not move it (this setting wins): set
# SEARCHGATE_SERVER__BIND=0.0.0.0:<port> instead.
ENV SEARCHGATE_SERVER__BIND=0.0.0.0:10000 \
    SEARCHGATE_DATABASE__URL=sqlite:///var/lib/searchgate/searchgate.db \
    SEARCHGATE_TELEMETRY__FORMAT=json
EXPOSE 10000
# No curl in the image: the binary asks its own /healthz (on loopback, at the bound port).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/searchgate", "healthcheck"]
# SIGTERM lets requests in flight finish for server.shutdown_grace_secs (10 s): give docker stop
# more than that (--stop-timeout 30, compose stop_grace_period: 30s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/searchgate"]
CMD ["serve"]
