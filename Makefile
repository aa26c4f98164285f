# The two commands: `make run` and `make test`. Each installs what it needs.
SHELL := /bin/bash
GO    ?= go

.PHONY: test test-cockroach test-shifted test-dates tidy-check fuzz-short run bench pgo-profile bench-events bench-import bench-ledger bench-tiers bench-expiry bench-finance proto proto-check fmt-check deps postgres chromium statement-tools

# Everything CI runs: formatting, a tidy go.mod, vet, every test with the
# race detector, then the date-sensitive packages again on another day in
# another time zone (test-shifted). The finance page's test renders it in
# headless Chromium (chromium); the member statement's PDF test needs a CJK
# font and poppler-utils (statement-tools).
test: deps postgres chromium statement-tools fmt-check tidy-check
	$(GO) vet ./...
	@echo "Database engines under test: PostgreSQL (embedded, always)$${COCKROACH_BINARY:+; CockroachDB from COCKROACH_BINARY=$$COCKROACH_BINARY}$${COCKROACH_URL:+; CockroachDB at COCKROACH_URL}"
	$(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory test-shifted
	@$(MAKE) --no-print-directory fuzz-short
	@$(MAKE) --no-print-directory test-cockroach

# The whole suite once more with dbtest.New on CockroachDB
# (DBTEST_ENGINE=cockroachdb): every test that touches the database, not only
# the ForEachEngine ones, then runs on the production engine. It runs when
# COCKROACH_BINARY or COCKROACH_URL is set; without either it says it was
# skipped and succeeds, since CI and these machines have no CockroachDB.
# Schema changes are slow on CockroachDB, hence the long timeout. Under
# COCKROACH_BINARY each test binary starts a node of its own (a share of the
# machine's memory each), hence at most COCKROACH_TEST_P binaries at once. No
# -race: the first go test of `test` already raced the same Go code.
COCKROACH_TEST_TIMEOUT ?= 90m
COCKROACH_TEST_P       ?= 2
test-cockroach:
	@if [ -z "$(strip $(COCKROACH_BINARY)$(COCKROACH_URL))" ]; then \
		echo "test-cockroach: SKIPPED (no CockroachDB configured): set COCKROACH_BINARY=/path/to/cockroach or COCKROACH_URL='postgresql://root@host:26257/?sslmode=disable' to run the whole suite on CockroachDB"; \
	else \
		echo "== DBTEST_ENGINE=cockroachdb $(GO) test -count=1 -p $(COCKROACH_TEST_P) -timeout $(COCKROACH_TEST_TIMEOUT) ./..."; \
		COCKROACH_BINARY='$(COCKROACH_BINARY)' COCKROACH_URL='$(COCKROACH_URL)' DBTEST_ENGINE=cockroachdb \
			$(GO) test -count=1 -p $(COCKROACH_TEST_P) -timeout $(COCKROACH_TEST_TIMEOUT) ./...; \
	fi

# Each fuzz target for FUZZTIME (make fuzz-short FUZZTIME=5m for a longer
# hunt); the seeds in the targets run with every plain go test too. The
# default is a count of inputs, a few seconds' worth, not a duration: a
# duration can end in a spurious "context deadline exceeded" failure with
# no failing input, a race in Go's fuzzing coordinator before Go 1.27
# (golang/go#75804), which failed a CI run here on 2026-12-07.
FUZZTIME ?= 10000x
FUZZ_TARGETS ?= ./rpc:FuzzWriteDecoding ./rpc:FuzzMoneyAmount ./txmeta:FuzzDecode
fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		echo "== go test -fuzz $${t#*:} -fuzztime $(FUZZTIME) $${t%%:*}"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) $${t%%:*} || exit 1; \
	done

# The date-sensitive packages (those whose tests read the calendar through
# internal/testclock) as if now were SHIFTED_NOW in SHIFTED_TZ. The default
# is a leap day two minutes before midnight in New York, already 1 March in
# UTC: a day, a month and a UTC date that all change during the run.
SHIFTED_NOW ?= 2028-02-29T23:58:00-05:00
SHIFTED_TZ  ?= America/New_York
test-shifted:
	@pkgs=$$($(GO) list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... \
		| awk '/internal\/testclock( |$$)/ && $$1 !~ /internal\/testclock$$/ {print $$1}'); \
	echo "Date-sensitive packages as of LOYALTY_TEST_NOW=$(SHIFTED_NOW) TZ=$(SHIFTED_TZ):" $$pkgs; \
	LOYALTY_TEST_NOW=$(SHIFTED_NOW) TZ=$(SHIFTED_TZ) $(GO) test -count=1 $$pkgs

# The whole suite once per date of TEST_DATES, in New York's time zone: what
# to run after touching anything that reads a clock. The dates: a year on, a
# leap day at midnight, a new year at midnight in Shanghai, and both sides
# of the 2027 spring-forward in New York plus a run that crosses it.
TEST_DATES ?= 2027-12-06 2028-02-29T23:58:00-05:00 2031-01-01T00:00:00+08:00 \
	2027-03-13T12:00:00-05:00 2027-03-14T01:58:00-05:00 2027-03-15T12:00:00-04:00
test-dates: deps postgres chromium statement-tools
	@for d in $(TEST_DATES); do \
		echo "== LOYALTY_TEST_NOW=$$d TZ=America/New_York"; \
		LOYALTY_TEST_NOW=$$d TZ=America/New_York $(GO) test -count=1 ./... || exit 1; \
	done

# go.mod and go.sum say exactly what the code imports (the tools module's too).
tidy-check:
	@for dir in . tools; do \
		if ! out=$$(cd $$dir && $(GO) mod tidy -diff 2>&1); then \
			echo "$$out"; echo "$$dir/go.mod is not tidy: run 'go mod tidy' in $$dir and commit go.mod and go.sum"; exit 1; \
		fi; \
	done

deps:
	$(GO) mod download

postgres:
	@scripts/ensure-postgres.sh

chromium:
	@scripts/ensure-chromium.sh

# The CJK font PDF statements embed (fonts-droid-fallback) and pdftotext and
# pdftoppm (poppler-utils), which the statements test checks the PDF with.
statement-tools:
	@scripts/ensure-statement-tools.sh

# The loyaltyd server on an embedded PostgreSQL (data in .data/postgres).
# Extra flags: make run ARGS='-listen 127.0.0.1:9090 -log-level debug'
# The server on an embedded PostgreSQL kept in .data/ (ARGS='-listen :9090' etc.).
# Built, then exec'd, so that Ctrl-C and SIGTERM reach loyaltyd itself.
# The CJK font of PDF statements is installed when it can be; without it
# the service runs and answers PDF exports with what to install.
run: deps postgres
	-@scripts/ensure-statement-tools.sh --font-only
	$(GO) build -o bin/loyaltyd ./cmd/loyaltyd
	exec bin/loyaltyd $(ARGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The service's throughput over Connect (protobuf, HTTP/2 without TLS)
# against the same machine's raw-SQL figure, on a fresh PostgreSQL with
# fsync on: each service phase twice, each after a baseline of its mode
# (spread and hot on members who have had a first stay, a first-stay phase
# on members enrolled for it, spread paced at half its peak), then
# ledger.Verify and the targets of issue 22, met or not. Each of the 14
# phases lasts BENCH_DURATION (make bench BENCH_DURATION=10s).
# Rows are appended to bin/bench.csv.
BENCH_DURATION ?= 20s
bench: deps postgres
	$(GO) build -o bin/loyaltyd ./cmd/loyaltyd
	$(GO) build -o bin/loyaltybench ./cmd/loyaltybench
	bin/loyaltybench run-all -loyaltyd bin/loyaltyd -duration $(BENCH_DURATION) -csv bin/bench.csv

# The profile Go's profile-guided optimisation builds loyaltyd with
# (cmd/loyaltyd/default.pgo): the service under make bench's load, events on.
pgo-profile: deps postgres
	$(GO) build -o bin/loyaltyd ./cmd/loyaltyd
	$(GO) build -o bin/loyaltybench ./cmd/loyaltybench
	scripts/pgo-profile.sh

# What the event pipeline costs the write path: service phases with it off
# and on (one webhook endpoint, 100 events per request), alternating on one
# PostgreSQL, on make bench's steady members, two pairs per mode; prints
# on/off per pair and the median.
bench-events: deps postgres
	$(GO) build -o bin/loyaltyd ./cmd/loyaltyd
	$(GO) build -o bin/loyaltybench ./cmd/loyaltybench
	bin/loyaltybench events-ab -loyaltyd bin/loyaltyd -duration $(BENCH_DURATION)

# Issue 21's figure: 100,000 past stays of 20,000 members imported from a
# generated file through RecordStays, next to single RecordStay calls.
bench-import: deps postgres
	$(GO) build -o bin/loyaltyd ./cmd/loyaltyd
	$(GO) build -o bin/loyaltybench ./cmd/loyaltybench
	bin/loyaltybench import-ab -loyaltyd bin/loyaltyd

# The ledger's throughput in its two modes, on PostgreSQL with fsync on.
bench-ledger: deps postgres
	$(GO) test ./ledger -run '^$$' -bench BenchmarkEarn -benchtime 20000x -count 1 | tee /tmp/bench-ledger.txt
	@awk '/BenchmarkEarn\/spread/ {for (i=1;i<=NF;i++) if ($$(i+1)=="tx/s") s=$$i} \
	      /BenchmarkEarn\/hot/    {for (i=1;i<=NF;i++) if ($$(i+1)=="tx/s") h=$$i} \
	      END { if (s && h) printf "hot/spread = %.2f\n", h/s }' /tmp/bench-ledger.txt

# The tier review over 1,000,000 members, all due, in batches of 1000, on
# PostgreSQL with fsync on: members/s, changed, peak Go heap, setup time.
# The review runs once per invocation, so -benchtime 1x.
bench-tiers: deps postgres
	$(GO) test ./members -run '^$$' -bench BenchmarkTierReview1M -benchtime 1x -count 1 -timeout 30m

# The points expiry job over 1,000,000 members, all due, in batches of
# 1000, on PostgreSQL with fsync on: members/s, points expired, peak Go heap,
# setup time; the ledger is verified afterwards (a discrepancy fails it).
bench-expiry: deps postgres
	$(GO) test ./expiry -run '^$$' -bench BenchmarkExpiry1M -benchtime 1x -count 1 -timeout 60m

# The finance reports over a ledger of 10,000,000 postings (400 days,
# bulk-loaded with COPY) on PostgreSQL with fsync on: load and rollup times,
# then ms/call of the trial balance and of the roll-forward over a month and
# over the whole ledger. FINANCE_BENCH_POSTINGS=n for another size.
bench-finance: deps postgres
	$(GO) test ./finance -run '^$$' -bench BenchmarkFinance10M -benchtime 5x -count 1 -timeout 60m -v 2>&1 \
		| grep -v ' INFO ' | tee /tmp/bench-finance.txt

# Regenerate the Go code from proto/ with the tool versions pinned in tools/go.mod.
proto:
	scripts/proto.sh

# Fail when the committed generated code differs from what proto/ generates.
proto-check:
	scripts/proto.sh check
