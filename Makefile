# bltcy-relay — build, test, install.
#
#   make              build everything into build/
#   make test         build, then run every test (tests/run)
#   make asan         the same binaries with AddressSanitizer + UBSan in build-asan/
#   make test-asan    the test suite against the sanitizer build
#   make tsan         the same binaries with ThreadSanitizer in build-tsan/
#   make test-tsan    the integration suites against the ThreadSanitizer build
#   make valgrind     every unit test program under valgrind
#   make fuzz         libFuzzer targets for the parsers of untrusted bytes
#   make fuzz-price-diff  the price field reader against Go's encoding/json
#                     on mutated bodies (FUZZ_SECONDS=600; needs golang-go)
#   make bench        benchmarks against nginx proxy_pass (not part of test;
#                     BENCH_SCENARIOS=inflight for the late-answer one alone)
#   make install      PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
DESTDIR ?=
B       ?= build

CC      ?= cc
OPT     ?= -O2 -g
WARN     = -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes \
           -Wwrite-strings -Wshadow -Wno-unused-parameter
CPPFLAGS += -D_GNU_SOURCE -Icommon -I$(B)
CFLAGS  += -std=c11 $(OPT) $(WARN) $(EXTRA_CFLAGS) \
           $(shell pkg-config --cflags libcurl json-c libmariadb 2>/dev/null)
LDLIBS_COMMON = $(shell pkg-config --libs libmariadb json-c) -lcrypto -lcrypt -lm
LDLIBS_RELAY  = -lfcgi $(shell pkg-config --libs libcurl zlib libbrotlidec) $(LDLIBS_COMMON)
LDFLAGS += $(EXTRA_LDFLAGS)

COMMON_SRC = $(wildcard common/*.c)
RELAY_SRC  = $(wildcard fcgi/*.c)
CTL_SRC    = admin-cgi/ctl.c
ADMIN_SRC  = $(filter-out $(CTL_SRC),$(wildcard admin-cgi/*.c))
MIGRATIONS = $(sort $(wildcard schema/[0-9]*.sql))

COMMON_OBJ = $(COMMON_SRC:%.c=$(B)/%.o)
RELAY_OBJ  = $(RELAY_SRC:%.c=$(B)/%.o)
ADMIN_OBJ  = $(ADMIN_SRC:%.c=$(B)/%.o)
CTL_OBJ    = $(CTL_SRC:%.c=$(B)/%.o)

UNIT_SRC   = $(wildcard tests/unit/test_*.c)
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)

PROGS = $(B)/bltcy-relay $(B)/bltcy-ctl $(B)/bltcy-admin.cgi $(B)/price-scan \
        $(UNIT_BIN)

all: $(PROGS)

$(B)/%.o: %.c $(wildcard common/*.h fcgi/*.h admin-cgi/*.h) $(B)/migrations.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The schema is compiled in, so the programs never look for .sql files.
$(B)/migrations.h: $(MIGRATIONS) schema/embed.sh
	@mkdir -p $(B)
	sh schema/embed.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(B)/libcommon.a: $(COMMON_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

$(B)/bltcy-relay: $(RELAY_OBJ) $(B)/libcommon.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_RELAY)

# The command line needs neither FastCGI nor libcurl; the admin pages use
# libcurl for a channel's test button only.
$(B)/bltcy-ctl: $(CTL_OBJ) $(B)/libcommon.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)

$(B)/bltcy-admin.cgi: $(ADMIN_OBJ) $(B)/libcommon.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs libcurl) $(LDLIBS_COMMON)

# The relay but its main(), for the unit tests to link what they do not
# include.
$(B)/librelay.a: $(filter-out $(B)/fcgi/master.o,$(RELAY_OBJ))
	rm -f $@ && $(AR) rcs $@ $^

# One unit test program per module (tests/unit/test_<module>.c): it
# includes the source it tests, to reach static functions, and links the
# rest.
$(B)/unit/%: tests/unit/%.c tests/unit/unit.h $(wildcard fcgi/*.[ch] common/*.h admin-cgi/*.[ch]) \
    $(B)/librelay.a $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ifcgi $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/librelay.a \
	    $(B)/libcommon.a $(LDLIBS_RELAY)

# The price's field reader (json_fields, common/jsonread.c) alone, for the
# differential test against Go's encoding/json (tests/goref/).
$(B)/price-scan: tests/goref/scan.c common/jsonread.h $(B)/libcommon.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ tests/goref/scan.c \
	    $(B)/libcommon.a $(LDLIBS_COMMON)

test: all
	BLTCY_BUILD=$(B) tests/run

asan:
	$(MAKE) B=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined"

# Sanitizer findings of any process (workers included) land in
# build-asan/reports; the target fails if there are any.
test-asan: asan
	rm -rf build-asan/reports && mkdir -p build-asan/reports
	BLTCY_BUILD=build-asan \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:log_path=$(CURDIR)/build-asan/reports/asan \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(CURDIR)/build-asan/reports/ubsan \
	    tests/run
	@if ls build-asan/reports/* >/dev/null 2>&1; then \
	    echo "sanitizer reports:"; cat build-asan/reports/*; exit 1; fi

tsan:
	$(MAKE) B=build-tsan OPT="-O1 -g -fno-omit-frame-pointer" \
	    EXTRA_CFLAGS="-fsanitize=thread" EXTRA_LDFLAGS="-fsanitize=thread"

# The relay's request threads under ThreadSanitizer, over the suites that
# drive it (every worker process reports into build-tsan/reports).
test-tsan: tsan
	rm -rf build-tsan/reports && mkdir -p build-tsan/reports
	BLTCY_BUILD=build-tsan \
	TSAN_OPTIONS=halt_on_error=0:report_signal_unsafe=0:log_path=$(CURDIR)/build-tsan/reports/tsan \
	    tests/run
	@if ls build-tsan/reports/* >/dev/null 2>&1; then \
	    echo "ThreadSanitizer reports:"; cat build-tsan/reports/*; exit 1; fi

valgrind: all
	for t in $(UNIT_BIN); do \
	    valgrind --error-exitcode=1 --leak-check=full -q $$t || exit 1; \
	done

fuzz:
	@mkdir -p build-fuzz
	for f in tests/fuzz/fuzz_*.c; do \
	    clang -g -O1 -fsanitize=fuzzer,address,undefined $(CPPFLAGS) -Ibuild -Ifcgi \
	        $$(pkg-config --cflags libcurl json-c libmariadb) -o build-fuzz/$$(basename $$f .c) $$f \
	        $(LDLIBS_RELAY) || exit 1; \
	done

# The relay's price field reader against Go's encoding/json on mutated
# bodies for FUZZ_SECONDS (not part of test; needs golang-go).
FUZZ_SECONDS ?= 600
fuzz-price-diff: $(B)/price-scan
	BLTCY_BUILD=$(B) python3 tests/goref/fuzz.py --seconds $(FUZZ_SECONDS)

# The bench's floor: a FastCGI program that only forwards (tests/bench/floor.c).
$(B)/bench-floor: tests/bench/floor.c
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lfcgi $(shell pkg-config --libs libcurl)

bench: all $(B)/bench-floor
	BLTCY_BUILD=$(B) tests/bench/run

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/bltcy-relay
	install -m 0755 $(B)/bltcy-relay $(B)/bltcy-ctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 bltcy-node-check $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(B)/bltcy-admin.cgi $(DESTDIR)$(PREFIX)/lib/bltcy-relay/

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all test asan test-asan tsan test-tsan valgrind fuzz fuzz-price-diff bench install clean
