# zramd — every target installs what it needs on a fresh Debian machine, then does its job.
SHELL := /bin/bash
SHARED ?= $(abspath ../shared)
CORPUS_ZST := $(SHARED)/corpus/pages-a.bin.zst
CORPUS := $(abspath .corpus/pages-a.bin)
export ZRAMD_CORPUS := $(CORPUS)

APT_PACKAGES := pkg-config zstd libzstd-dev liblz4-dev libsqlite3-dev zlib1g-dev liblzo2-dev
# What the black-box tests and the HTTP benchmark drive the server with (chromium: the /ui browser test).
APT_TEST_PACKAGES := curl prometheus wrk nginx-light systemd binutils sqlite3 chromium chromium-driver

.PHONY: nbd-deps test-nbd bench-nbd
.PHONY: deps test-deps apt-install run lint test test-unit test-tsan test-asan test-api test-integration test-deploy bench bench-store bench-device bench-http bench-peers bench-tier build-release profile-get
.PHONY: reliability-deps test-reliability test-fuzz-api test-fuzz-replay soak soak-fuzz-api soak-fuzz soak-model soak-asan

deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"

test-deps: deps
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_TEST_PACKAGES)"
	python3 -m pip install -q -r blackbox/integration/requirements.txt
	python3 -m pip install -q -r blackbox/deploy/requirements.txt

# Installs the Debian packages among $(PACKAGES) that are missing (idempotent).
apt-install:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

$(CORPUS): $(CORPUS_ZST) | deps
	mkdir -p $(dir $@)
	zstd -q -d -f $< -o $@

build-release: deps
	swift build -c release --product zramd

run: build-release
	.build/release/zramd $(ARGS)

test: lint test-unit test-tsan test-asan test-api test-integration test-deploy test-reliability test-nbd

# The code follows .swift-format (the toolchain's `swift format`).
lint:
	swift format lint --strict --recursive Sources Tests bench/Sources Fuzz/ZramFuzz Package.swift

test-unit: deps $(CORPUS)
	swift test

# The concurrency tests again under ThreadSanitizer, in their own build folder.
test-tsan: deps $(CORPUS)
	swift test --scratch-path .build-tsan --sanitize=thread --filter "Concurrent|FrontDoor|LaterHead|DataDirectoryRace"

# The C-facing code (codecs, allocator, SQLite) under AddressSanitizer.
test-asan: deps $(CORPUS)
	swift test --scratch-path .build-asan --sanitize=address --disable-xctest

# The HTTP contract is valid OpenAPI 3.1.
test-api: test-deps
	python3 -m openapi_spec_validator api/openapi.yaml

# Black-box tests: the release binary on loopback, driven by Python requests, curl and promtool.
test-integration: test-deps build-release $(CORPUS)
	ZRAMD_BIN=$(abspath .build/release/zramd) python3 -m pytest -q blackbox/integration

# deploy/ and docs/: systemd-analyze verify, the Containerfile against the binary's libraries,
# kubernetes-validate, promtool and a live Prometheus, 3 zramd nodes behind nginx, every sh block in docs/.
test-deploy: test-deps build-release
	ZRAMD_BIN=$(abspath .build/release/zramd) python3 -m pytest -q blackbox/deploy

# The NBD front end (docs/NBD.md) against real clients: libnbd (nbdinfo, nbdcopy, nbdsh's
# python3-libnbd, nbdfuse), qemu-io/qemu-img, fio's nbd engine, mkfs.ext4/e2fsck; nbdkit for bench-nbd.
APT_NBD_PACKAGES := libnbd-bin python3-libnbd nbdkit nbdfuse fuse3 qemu-utils fio e2fsprogs

nbd-deps: test-deps
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_NBD_PACKAGES)"

test-nbd: nbd-deps build-release $(CORPUS)
	$(ZRAMD_BIN_ENV) python3 -m pytest -q -rs blackbox/nbd

# zramd's NBD export against `nbdkit memory`, same run, same fio client (docs/BENCHMARKS.md).
bench-nbd: nbd-deps build-release $(CORPUS)
	mkdir -p bench/results
	python3 bench/nbd/run.py --zramd .build/release/zramd --corpus $(CORPUS) --out bench/results/nbd.json

# Reliability (docs/RELIABILITY.md): API fuzzing, the HTTP model test, faults and abuse, as root.
APT_RELIABILITY_PACKAGES := e2fsprogs util-linux iproute2
ZRAMD_BIN_ENV := ZRAMD_BIN=$(abspath .build/release/zramd)
FUZZ_TIME ?= 60

reliability-deps: test-deps
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_RELIABILITY_PACKAGES)"
	python3 -m pip install -q -r blackbox/reliability/requirements.txt

# About 90 s: schemathesis (~2,000 cases), the HTTP model test, faults on a tmpfs, abuse.
test-reliability: reliability-deps build-release $(CORPUS) test-fuzz-replay
	$(ZRAMD_BIN_ENV) python3 -m pytest -q -rxX blackbox/reliability

test-fuzz-api: reliability-deps build-release
	$(ZRAMD_BIN_ENV) python3 -m pytest -q blackbox/reliability/test_fuzz_api.py

# The parser fuzzer's seed corpora and 20,000 random mutations, without libFuzzer.
test-fuzz-replay: deps
	swift build -c release --product ZramFuzz
	for t in attributes router; do ZRAMD_FUZZ_TARGET=$$t .build/release/ZramFuzz --runs 20000 Fuzz/Corpus/$$t || exit 1; done

# Long runs: at least 5,000 API cases, libFuzzer for FUZZ_TIME s per target, a longer model
# test, the whole suite under AddressSanitizer with a long error-path soak (LeakSanitizer on).
soak: soak-fuzz-api soak-fuzz soak-model soak-asan

soak-fuzz-api: reliability-deps build-release
	ZRAMD_API_FUZZ_EXAMPLES=100 ZRAMD_API_FUZZ_RUNS=3 ZRAMD_API_FUZZ_MIN_CASES=5000 \
	  $(ZRAMD_BIN_ENV) python3 -m pytest -q -s blackbox/reliability/test_fuzz_api.py

soak-fuzz: deps
	swift build -c release --product ZramFuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
	for t in attributes router; do mkdir -p .fuzz/$$t; \
	  ZRAMD_FUZZ_TARGET=$$t .build-fuzz/release/ZramFuzz -max_total_time=$(FUZZ_TIME) -max_len=512 -print_final_stats=1 \
	    -artifact_prefix=.fuzz/$$t- .fuzz/$$t Fuzz/Corpus/$$t || exit 1; done

soak-model: reliability-deps build-release $(CORPUS)
	ZRAMD_MODEL_CLIENTS=16 ZRAMD_MODEL_OPS=8000 $(ZRAMD_BIN_ENV) python3 -m pytest -q -s blackbox/reliability/test_http_model.py

soak-asan: deps $(CORPUS)
	ZRAMD_SOAK_ROUNDS=300 ASAN_OPTIONS=detect_leaks=1 swift test --scratch-path .build-asan --sanitize=address --disable-xctest

bench: bench-store bench-device bench-http

bench-store: deps $(CORPUS)
	mkdir -p bench/results
	swift run -c release zbench store --corpus $(CORPUS) --out bench/results/store.json

bench-device: deps $(CORPUS)
	mkdir -p bench/results
	swift run -c release zbench device --corpus $(CORPUS) --out bench/results/device.json

# wrk against zramd and nginx in the same run; batch MB/s against this run's device benchmark.
bench-http: test-deps build-release bench-device
	python3 bench/http/run.py --zramd .build/release/zramd --corpus $(CORPUS) \
	  --device-results bench/results/device.json --out bench/results/http.json

# The one C load generator of bench-peers and bench-tier (HTTP, memcached text, Redis RESP).
LOADGEN := .build/loadgen
$(LOADGEN): bench/loadgen/loadgen.c
	@$(MAKE) --no-print-directory apt-install PACKAGES="gcc libc6-dev"
	mkdir -p $(dir $@)
	cc -O2 -Wall -o $@ bench/loadgen/loadgen.c -lpthread -lm

# zramd against memcached, Redis and nginx on loopback, same run: memory per page, GET/PUT/batch
# throughput and server CPU per request (one C loader for all four, bench/loadgen), GET latency while
# compact/recompress/writeback run, 1x/4x/16x scaling. QUICK=1: smoke run.
PEERS_APT_PACKAGES := memcached redis-server nginx-light
bench-peers: test-deps build-release $(CORPUS) $(LOADGEN)
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(PEERS_APT_PACKAGES)"
	mkdir -p bench/results
	python3 bench/peers/run.py --zramd .build/release/zramd --loader $(LOADGEN) --corpus $(CORPUS) \
	  --out bench/results/peers.json $(if $(QUICK),--quick)

# perf profile of zramd's server during a bench/loadgen GET run (64 connections): the flat list is printed,
# the loader's JSON, the list by DSO and the call graphs are in profile-get.txt.
profile-get: build-release $(CORPUS) $(LOADGEN)
	@$(MAKE) --no-print-directory apt-install PACKAGES="linux-perf curl"
	bench/loadgen/profile.sh .build/release/zramd $(LOADGEN) $(CORPUS) profile-get.txt

# Tiering: zramd (mem_limit = 25 % of the compressed corpus x4, auto_writeback + promotion, SQLite backing
# store on the local disk) against memcached + extstore with the same RAM budget: 60 s of Zipf(0.99) GETs
# with 10 % PUTs each (and a zramd with every page in RAM as a reference), interleaved rounds, one C loader
# (bench/loadgen/loadgen.c) for all. About 4 minutes;
# TIER_SECONDS=6 for a smoke run.
TIER_APT_PACKAGES := memcached python3
TIER_SECONDS ?= 60
bench-tier: deps build-release $(CORPUS) $(LOADGEN)
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(TIER_APT_PACKAGES)"
	mkdir -p bench/results
	python3 bench/tier/run.py --zramd .build/release/zramd --loader $(LOADGEN) --corpus $(CORPUS) \
	  --out bench/results/tier.json --seconds $(TIER_SECONDS)
