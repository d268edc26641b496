# The two commands of the README, and the rest of the developer loop, over
# CMake. Every build lives in its own directory under build/.
#
#   make bench          Release build, then the benchmark report (bench/run)
#   make bench-quick    the same in under a minute, smaller counts
#   make bench-instr    callgrind instructions per operation
#   make bench-programs whole programs under each malloc (LD_PRELOAD), ~12 min
#   make test           build and run the whole test suite
#   make test-preload   only the programs run under the malloc drop-in
#   make test-noinline  the suite with the header's inline paths as plain calls
#   make test-asan      the suite under AddressSanitizer + UBSan
#   make test-tsan      the threaded tests under ThreadSanitizer
#   make test-valgrind  the unit and API tests under Valgrind memcheck
#   make fuzz           the libFuzzer targets of fuzz/, FUZZ_S seconds each (60; clang)
#   make soak           the soak test, SOAK_S seconds (7200)
#   make install        cmake --install build/release (PREFIX=/usr/local)
#   make clean          remove build/
#
# The test targets take another compiler from CC, in a build directory of
# their own: `CC=clang make test-asan` builds in build/asan-clang.

CMAKE ?= cmake
CTEST ?= ctest
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
CTEST_FLAGS ?= --output-on-failure --no-tests=error -j $(JOBS)

# No "Entering/Leaving directory" lines from the makes under cmake --build.
MAKEFLAGS += --no-print-directory

# CC given on the command line or in the environment: passed to CMake, and
# the build directory is named after it.
ifeq ($(filter default undefined,$(origin CC)),)
cc_opt = -DCMAKE_C_COMPILER=$(CC)
cc_dir = -$(notdir $(firstword $(CC)))
endif

.PHONY: all release bench bench-quick bench-instr bench-programs test test-preload test-noinline test-asan test-tsan test-valgrind fuzz soak install clean

FUZZ_S ?= 60
SOAK_S ?= 7200

all: test

# configure DIR, ARGS...: (re)configure a build directory.
configure = $(CMAKE) -S . -B $(1) $(2) >/dev/null

build/release/.configured:
	$(call configure,build/release,-DCMAKE_BUILD_TYPE=Release -DMPOOL_BUILD_TESTS=OFF -DMPOOL_BUILD_BENCH=ON -DMPOOL_BUILD_EXAMPLES=OFF)
	@touch $@

release: build/release/.configured
	$(CMAKE) --build build/release -j $(JOBS) >/dev/null

bench: release
	bench/run --build build/release

bench-quick: release
	bench/run --build build/release --quick

bench-instr: release
	bench/run --build build/release --instr

bench-programs: release
	bench/run --build build/release --programs

# The build of make test and make test-preload.
build_test = $(call configure,build/test$(cc_dir),$(cc_opt) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPOOL_BUILD_TESTS=ON -DMPOOL_BUILD_BENCH=OFF -DMPOOL_BUILD_EXAMPLES=ON) && \
	$(CMAKE) --build build/test$(cc_dir) -j $(JOBS)

test:
	$(build_test)
	$(CTEST) --test-dir build/test$(cc_dir) $(CTEST_FLAGS)

# tests/preload/README.md: MPOOL_PRELOAD_LIB=FILE tests another allocator
# in the drop-in's place.
test-preload:
	$(build_test)
	$(CTEST) --test-dir build/test$(cc_dir) -L preload $(CTEST_FLAGS)

test-noinline:
	$(call configure,build/noinline$(cc_dir),$(cc_opt) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPOOL_NO_INLINE=ON -DMPOOL_BUILD_TESTS=ON -DMPOOL_BUILD_BENCH=OFF -DMPOOL_BUILD_EXAMPLES=ON)
	$(CMAKE) --build build/noinline$(cc_dir) -j $(JOBS)
	$(CTEST) --test-dir build/noinline$(cc_dir) $(CTEST_FLAGS)

test-asan:
	$(call configure,build/asan$(cc_dir),$(cc_opt) -DCMAKE_BUILD_TYPE=Debug -DMPOOL_SANITIZE=address -DMPOOL_BUILD_BENCH=OFF -DMPOOL_BUILD_EXAMPLES=ON)
	$(CMAKE) --build build/asan$(cc_dir) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(CTEST) --test-dir build/asan$(cc_dir) $(CTEST_FLAGS)

test-tsan:
	$(call configure,build/tsan$(cc_dir),$(cc_opt) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPOOL_SANITIZE=thread -DMPOOL_BUILD_BENCH=OFF -DMPOOL_BUILD_EXAMPLES=ON)
	$(CMAKE) --build build/tsan$(cc_dir) -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $(CTEST) --test-dir build/tsan$(cc_dir) -L threaded $(CTEST_FLAGS)

test-valgrind:
	$(call configure,build/valgrind$(cc_dir),$(cc_opt) -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DMPOOL_TEST_WRAPPER=valgrind;-q;--error-exitcode=1;--leak-check=full;--errors-for-leak-kinds=definite" -DMPOOL_BUILD_BENCH=OFF -DMPOOL_BUILD_EXAMPLES=OFF)
	$(CMAKE) --build build/valgrind$(cc_dir) -j $(JOBS)
	$(CTEST) --test-dir build/valgrind$(cc_dir) -L 'unit|api' $(CTEST_FLAGS)

fuzz:
	FUZZ_S=$(FUZZ_S) JOBS=$(JOBS) scripts/fuzz

soak:
	$(call configure,build/soak,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPOOL_BUILD_TESTS=ON -DMPOOL_BUILD_BENCH=OFF -DMPOOL_BUILD_EXAMPLES=OFF)
	$(CMAKE) --build build/soak -j $(JOBS) --target soak
	build/soak/tests/soak $(SOAK_S)

install: release
	$(CMAKE) --install build/release --prefix $(PREFIX)

clean:
	rm -rf build
