# Freshet — the two commands that matter: `make run` and `make test`.

GO       ?= go
BIN      := bin/freshet
EXAMPLE  := examples/sales
FUZZTIME ?= 30s
BENCHTIME ?= 3x
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/freshetdev/freshet/cmd/freshet/cli.Version=$(VERSION)

.PHONY: all build run test lint vet fmt-check postgres unit bench fuzz clean

all: build

## build: compile the freshet binary into bin/
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/freshet

## run: materialize the example's first week of January 2026 on its embedded catalog, then print its status
run: build
	./$(BIN) validate -f $(EXAMPLE)
	@echo
	./$(BIN) observe -f $(EXAMPLE)
	@echo
	./$(BIN) materialize -f $(EXAMPLE) --from 2026-01-01 --to 2026-01-07
	@echo
	./$(BIN) status -f $(EXAMPLE)

## test: everything CI runs
test: lint unit

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

## bench: performance figures, each printed with the size of its case (BENCHTIME runs of each)
bench: postgres
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

## fuzz: run every fuzz target for FUZZTIME (default 30s) each
fuzz:
	$(GO) test ./assets -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./assets -run '^$$' -fuzz '^FuzzPartitionKey$$' -fuzztime $(FUZZTIME)
	$(GO) test ./lineage -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin
