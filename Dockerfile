# A small image of natter: built with the Rust toolchain, run on
# distroless (glibc, CA certificates, nothing else: no shell, no package
# manager) as a non-root user.
#   docker build -t natter .
#   docker run -d -p 8080:8080 -v natter-data:/data --name natter natter
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin natter \
    && strip target/release/natter \
    && mkdir /data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/natter /natter
# The data folder, owned by the image's non-root user (65532).
COPY --from=build --chown=65532:65532 /data /data
ENV NATTER_DATA=/data \
    NATTER_BIND=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
USER nonroot
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/natter", "healthcheck"]
ENTRYPOINT ["/natter"]
CMD ["serve"]
