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

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

bench: build cluster-bin
	./bench/run $(NAMES)

# The container image of deploy/Dockerfile, with buildah (slow: not part of check).
image:
	./deploy/build-image

clean:
	rm -rf $(BUILD) build-asan
