# Herald's container image: built from Debian 12 packages in a build stage,
# run from debian:12-slim with only the shared libraries the binaries load.
#
#   docker build -t herald:dev .
#   docker run --rm herald:dev --help
#   docker run --rm -e HERALD_DATABASE_URL=... herald:dev migrate
#   docker run --rm -p 50051:50051 -p 9464:9464 herald:dev      # serve
#
# tests/deploy/dockerfile.test.cjs keeps this file honest without a Docker
# engine: the runtime packages below must be exactly the owners of the
# libraries that `herald` and `heraldctl` link (readelf NEEDED -> dpkg -S),
# and the files copied here must configure the project, with every library
# and tool CMake finds coming from a package the build stage installs.

FROM debian:12 AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libpaho-mqttpp-dev libpaho-mqtt-dev libpqxx-dev prometheus-cpp-dev \
      libspdlog-dev libssl-dev libjemalloc-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY CMakeLists.txt ./
COPY proto/ proto/
COPY providers/ providers/
COPY service/ service/
COPY migrations/ migrations/

# Tests and benchmarks off: the image needs neither GoogleTest nor bench/.
RUN cmake -S /src -B /src/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DHERALD_BUILD_TESTS=OFF -DHERALD_BUILD_BENCH=OFF \
 && cmake --build /src/build --target herald heraldctl \
 && mkdir -p /out \
 && install -m 0755 -s /src/build/service/herald /src/build/service/ctl/heraldctl /out/ \
 && /out/herald version

FROM debian:12-slim

LABEL org.opencontainers.image.title="herald" \
      org.opencontainers.image.description="Notifications and commands for MQTT devices, as a gRPC service"

# Runtime libraries only (apt brings their own dependencies: libpq5,
# libfmt9, ...), plus the CA bundle for ssl:// and wss:// brokers. libssl3
# holds libcrypto, which herald loads to check its gRPC TLS files.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libabsl20220623 libc6 libgcc-s1 libstdc++6 \
      libgrpc++1.51 libgrpc29 libprotobuf32 \
      libpaho-mqtt1.3 libpaho-mqttpp3-1 \
      libpqxx-6.4 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libspdlog1.10 libssl3 libjemalloc2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 herald \
 && useradd --system --uid 10001 --gid herald --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin herald

COPY --from=build /out/herald /out/heraldctl /usr/local/bin/

# Fails the build if a shared library is missing from the list above.
RUN herald version && heraldctl version

# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

# gRPC API (and health, reflection); Prometheus /metrics.
EXPOSE 50051 9464

ENTRYPOINT ["herald"]
CMD ["serve"]
