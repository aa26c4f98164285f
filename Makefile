# The two commands: `make run` and `make test`. Each installs what it needs.
SHELL := /bin/bash
GO    ?= go

.PHONY: test run bench bench-ledger bench-tiers bench-expiry bench-finance proto proto-check fmt-check deps postgres chromium

# Everything CI runs: formatting, vet, and every test with the race detector.
# The finance page's test renders it in headless Chromium (chromium).
test: deps postgres chromium fmt-check
	$(GO) vet ./...
	@echo "Database engines under test: PostgreSQL (embedded, always)$${COCKROACH_BINARY:+; CockroachDB from COCKROACH_BINARY=$$COCKROACH_BINARY}$${COCKROACH_URL:+; CockroachDB at COCKROACH_URL}"
	$(GO) test -race -count=1 ./...

deps:
	$(GO) mod download

postgres:
	@scripts/ensure-postgres.sh

chromium:
	@scripts/ensure-chromium.sh

# The loyaltyd server on an embedded PostgreSQL (data in .data/postgres).
# Extra flags: make run ARGS='-listen 127.0.0.1:9090 -log-level debug'
# The server on an embedded PostgreSQL kept in .data/ (ARGS='-listen :9090' etc.).
# Built, then exec'd, so that Ctrl-C and SIGTERM reach loyaltyd itself.
run: deps postgres
	$(GO) build -o bin/loyaltyd ./cmd/loyaltyd
	exec bin/loyaltyd $(ARGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The service's throughput over Connect (HTTP/2 without TLS) against the
# same machine's raw-SQL figure, on a fresh PostgreSQL with fsync on:
# baseline spread, service spread, baseline hot, service hot, then
# ledger.Verify. Each phase lasts BENCH_DURATION (make bench BENCH_DURATION=10s).
# Rows are appended to bin/bench.csv.
BENCH_DURATION ?= 20s
bench: deps postgres
	$(GO) build -o bin/loyaltyd ./cmd/loyaltyd
	$(GO) build -o bin/loyaltybench ./cmd/loyaltybench
	bin/loyaltybench run-all -loyaltyd bin/loyaltyd -duration $(BENCH_DURATION) -csv bin/bench.csv

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
