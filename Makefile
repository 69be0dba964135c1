# Freshet — the two commands that matter: `make run` and `make test`.

GO       ?= go
BIN      := bin/freshet
EXAMPLE  := examples/sales
FUZZTIME ?= 30s
BENCHTIME ?= 3x
NPM      ?= npm
CHROMIUM ?= /usr/bin/chromium
# The web UI's sources: a change to any of them rebuilds ui/dist (embedded in the binary).
UI_SRC   := $(shell find ui/src -type f 2>/dev/null) ui/index.html ui/vite.config.ts ui/tsconfig.json ui/tsconfig.app.json ui/package.json ui/package-lock.json
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/freshetdev/freshet/cmd/freshet/cli.Version=$(VERSION)

.PHONY: all build run test lint vet fmt-check postgres unit bench fuzz clean ui ui-test ui-unit ui-e2e bench-ui chromium

all: build

## build: build the web UI (ui/dist), then compile the freshet binary, with the UI embedded, into bin/
build: ui
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/freshet

## ui: build the web UI into ui/dist (npm ci first when node_modules is missing or package-lock.json changed)
ui: ui/dist/index.html

ui/node_modules/.package-lock.json: ui/package-lock.json ui/package.json
	cd ui && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(NPM) ci --no-audit --no-fund
	@touch $@

ui/dist/index.html: ui/node_modules/.package-lock.json $(UI_SRC)
	cd ui && $(NPM) run build

## run: materialize the example's first week of January 2026 on its embedded catalog, print its status, then serve it with the web UI at http://127.0.0.1:3000
run: build
	./$(BIN) validate -f $(EXAMPLE)
	@echo
	./$(BIN) observe -f $(EXAMPLE)
	@echo
	./$(BIN) materialize -f $(EXAMPLE) --from 2026-01-01 --to 2026-01-07
	@echo
	./$(BIN) status -f $(EXAMPLE)
	@echo
	@echo "Serving $(EXAMPLE): the web UI at http://127.0.0.1:3000 (GraphQL at http://127.0.0.1:3000/graphql). Ctrl-C stops it."
	./$(BIN) serve -f $(EXAMPLE) --addr 127.0.0.1:3000

## test: everything CI runs
test: lint unit ui-test

## ui-test: the web UI's unit tests (Vitest), then its browser tests (Chromium against a real freshet serve)
ui-test: ui-unit ui-e2e

ui-unit: ui/node_modules/.package-lock.json
	cd ui && $(NPM) test

# Screenshots go to ui/test-results/.
ui-e2e: build chromium
	cd ui && FRESHET_BIN=$(abspath $(BIN)) CHROMIUM=$(CHROMIUM) $(NPM) run test:e2e

## chromium: install Debian's chromium for the browser tests when it is missing (never a downloaded browser)
chromium:
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is missing: installing Debian's chromium"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

## lint: gofmt and go vet
lint: fmt-check vet

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## postgres: make sure the tests' PostgreSQL is up (starts the local one if stopped)
postgres:
	@bash scripts/ensure-postgres.sh

## unit: Go tests with the race detector, against PostgreSQL and SQLite
unit: postgres
	$(GO) test -race -count=1 ./...

## bench: performance figures, each printed with the size of its case (BENCHTIME runs of each), then the UI's
bench: postgres
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...
	$(MAKE) bench-ui

## bench-ui: the web UI in headless Chromium: a 1,000-asset graph, a 100,000-partition strip (BENCH_RUNS runs of each)
bench-ui: build chromium
	cd ui && FRESHET_BIN=$(abspath $(BIN)) CHROMIUM=$(CHROMIUM) $(NPM) run bench

## fuzz: run every fuzz target for FUZZTIME (default 30s) each
fuzz:
	$(GO) test ./assets -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./assets -run '^$$' -fuzz '^FuzzPartitionKey$$' -fuzztime $(FUZZTIME)
	$(GO) test ./lineage -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin
	find ui/dist -mindepth 1 ! -name .gitkeep -delete 2>/dev/null || true
