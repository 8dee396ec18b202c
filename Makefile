# zramd — every target installs what it needs on a fresh Debian machine, then does its job.
SHELL := /bin/bash
SHARED ?= $(abspath ../shared)
CORPUS_ZST := $(SHARED)/corpus/pages-a.bin.zst
CORPUS := $(abspath .corpus/pages-a.bin)
export ZRAMD_CORPUS := $(CORPUS)

APT_PACKAGES := pkg-config zstd libzstd-dev liblz4-dev libmicrohttpd-dev libsqlite3-dev zlib1g-dev liblzo2-dev

.PHONY: deps run test test-unit test-tsan test-asan bench bench-store bench-device build-release

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
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

test: test-unit test-tsan test-asan

test-unit: deps $(CORPUS)
	swift test

# The concurrency tests again under ThreadSanitizer, in their own build folder.
test-tsan: deps $(CORPUS)
	swift test --scratch-path .build-tsan --sanitize=thread --filter Concurrent

# The C-facing code (codecs, allocator, SQLite) under AddressSanitizer.
test-asan: deps $(CORPUS)
	swift test --scratch-path .build-asan --sanitize=address --disable-xctest

bench: bench-store bench-device

bench-store: deps $(CORPUS)
	mkdir -p bench/results
	swift run -c release zbench store --corpus $(CORPUS) --out bench/results/store.json

bench-device: deps $(CORPUS)
	mkdir -p bench/results
	swift run -c release zbench device --corpus $(CORPUS) --out bench/results/device.json
