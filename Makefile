# The two commands: `make demo` and `make check`. Both install what is missing
# (Debian packages via scripts/install-deps; the control plane and the test
# tools, helm, promtool and toxiproxy, are built from the upstream Go modules by
# tests/cluster/build and tests/tools/build), then build and run.
BUILD ?= build
MESON_FLAGS ?=
SUITE ?=

.PHONY: all deps build cluster-bin tools-bin check demo asan valgrind format fuzz bench image clean

all: build

deps:
	@./scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD) --werror $(MESON_FLAGS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

cluster-bin: deps
	@./tests/cluster/build $(CURDIR)/$(BUILD)/cluster/bin

# helm (the chart test of the run suite), promtool (the metrics lint of the
# run suite, the alert rules of the unit suite) and toxiproxy (the faults
# suite), pinned in tests/tools/<tool>/.
tools-bin: deps
	@./tests/tools/build $(CURDIR)/$(BUILD)/tools/bin

check: build cluster-bin tools-bin
	@./scripts/check $(BUILD) $(SUITE)

demo: build cluster-bin
	@./scripts/demo $(BUILD)

# Unit and fuzz suites under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	@[ -f build-asan/build.ninja ] || meson setup build-asan --werror -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-asan
	meson test -C build-asan --print-errorlogs --suite unit --suite fuzz

# Unit suites under valgrind memcheck.
valgrind: build
	meson test -C $(BUILD) --print-errorlogs --setup valgrind --suite unit

# One libFuzzer target, coverage-guided, under ASan + UBSan (clang), for
# SECONDS seconds: `make fuzz TARGET=yamledit SECONDS=600`. The corpus grows
# in $(FUZZ_BUILD)/corpus/TARGET, seeded from tests/fuzz/corpus/TARGET;
# crashes go to $(FUZZ_BUILD)/artifacts/TARGET (tests/fuzz/README.md).
FUZZ_BUILD ?= build-fuzz
TARGET ?=
SECONDS ?= 600
fuzz: deps
	@[ -n "$(TARGET)" ] && [ -f tests/fuzz/fuzz-$(TARGET).c ] || { echo "usage: make fuzz TARGET=<target> [SECONDS=600]; targets:" \
		$$(ls tests/fuzz/fuzz-*.c | sed 's,.*/fuzz-,,; s,\.c$$,,'); exit 2; }
	@[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang meson setup $(FUZZ_BUILD) --werror \
		-Dfuzz_engine=libfuzzer -Db_sanitize=address,undefined -Db_lundef=false
	nice ninja -C $(FUZZ_BUILD) tests/fuzz/fuzz-$(TARGET)
	@mkdir -p $(FUZZ_BUILD)/corpus/$(TARGET) $(FUZZ_BUILD)/artifacts/$(TARGET)
	@cp -n tests/fuzz/corpus/$(TARGET)/* $(FUZZ_BUILD)/corpus/$(TARGET)/
	nice -n 19 $(FUZZ_BUILD)/tests/fuzz/fuzz-$(TARGET) -max_total_time=$(SECONDS) -print_final_stats=1 \
		-timeout=10 -rss_limit_mb=2048 -max_len=4096 -artifact_prefix=$(FUZZ_BUILD)/artifacts/$(TARGET)/ \
		$(FUZZ_BUILD)/corpus/$(TARGET)

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

bench: build cluster-bin
	./bench/run $(NAMES)

# The container image of deploy/Dockerfile, with buildah (slow: not part of check).
image:
	./deploy/build-image

clean:
	rm -rf $(BUILD) build-asan $(FUZZ_BUILD)
