# cdcd — build, test and run against the local stack.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The one set of build flags: a static, stripped binary. The Dockerfile uses the same line
# (a test checks it).
GO_BUILD_FLAGS := CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
STACK := scripts/stack/stack.sh
# Integration tests run against these (the stack's defaults; override like the stack's ports).
export CDCD_TEST_STACK ?= 1
export CDCD_TEST_PG_DSN ?= postgres://postgres@127.0.0.1:$(or $(CDCD_PG_PORT),55432)/postgres
export CDCD_TEST_MYSQL_DSN ?= root@tcp(127.0.0.1:$(or $(CDCD_MARIADB_PORT),33306))/
export CDCD_TEST_KAFKA ?= 127.0.0.1:$(or $(CDCD_KAFKA_PORT),19092)
export CDCD_TEST_REGISTRY ?= http://127.0.0.1:$(or $(CDCD_REGISTRY_PORT),18081)/apis/ccompat/v7
# The TLS/SASL side (scripts/stack/tls.sh): Kafka's SASL_SSL listener, the registry behind basic
# auth, and the directory with the stack's CA, client certificate and secrets.
export CDCD_TEST_KAFKA_SASL_SSL ?= 127.0.0.1:$(or $(CDCD_KAFKA_SASL_SSL_PORT),19094)
export CDCD_TEST_REGISTRY_AUTH ?= http://127.0.0.1:$(or $(CDCD_REGISTRY_AUTH_PORT),18082)/apis/ccompat/v7
export CDCD_TEST_TLS_DIR ?= $(or $(CDCD_STACK_DIR),$(CURDIR)/.stack)/tls
GOTEST_TIMEOUT ?= 45m

.PHONY: all build test unit integration vet fmt-check alerts-test stack-up stack-down stack-status demo demo-smoke bench clean

all: build

build:
	$(GO_BUILD_FLAGS) -o bin/cdcd ./cmd/cdcd

## test: bring the stack up if needed, run the demo briefly on it (a fresh stack in CI: the
## first run a new user makes), then vet, the alert rules, and every test (unit + integration)
## with -race.
test: stack-up demo-smoke vet fmt-check alerts-test
	go test -race -count=1 -timeout $(GOTEST_TIMEOUT) ./...
	cd bench && go test -count=1 ./...

## alerts-test: promtool check and unit-test the shipped alert rules.
alerts-test:
	cd deploy/prometheus && ../../scripts/promtool.sh check rules alerts.yaml && ../../scripts/promtool.sh test rules alerts_test.yaml

## unit: tests that need no stack.
unit:
	CDCD_TEST_STACK= go test -race -count=1 $$(go list ./... | grep -v /integration)
	cd bench && go test -count=1 ./...

integration: stack-up
	go test -race -count=1 -timeout $(GOTEST_TIMEOUT) ./integration/...

vet:
	go vet ./...
	cd bench && go vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on: $$out"; exit 1; fi

stack-up:
	$(STACK) up

stack-down:
	$(STACK) down

stack-status:
	$(STACK) status

## demo: the stack, a demo database with writes, and cdcd streaming them; watch the records.
demo: build stack-up
	scripts/demo.sh

## demo-smoke: the demo for a few seconds, failing unless the watcher read every change event
## cdcd committed and the window job committed results.
demo-smoke: build stack-up
	DEMO_SECONDS=$${DEMO_SECONDS:-6} DEMO_CHECK=1 scripts/demo.sh

bench: build stack-up
	go test -run '^$$' -bench . -benchmem ./encode/ ./source/postgres/
	CDCD_VERIFY_BENCH_ROWS=$${CDCD_VERIFY_BENCH_ROWS:-5000000} go test -count=1 -v -timeout 30m -run '^TestVerifyPostgresSpeed$$' ./integration/ | grep -E 'rows/s|^(--- |ok|FAIL)'
	scripts/bench.sh

clean:
	rm -rf bin
