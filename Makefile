# tidewatch: build, test against real parts, demo, benchmarks.
# `make test` and `make demo` install what the tests need (once, before any
# test starts: one apt-get step, mailpit and the compose v2 plugin with go) and
# start the parts (Docker engine, registry, mail servers, MQTT broker) through
# test/bedctl, and stop them afterwards.

GO      ?= go
export PATH := $(PATH):/usr/local/go/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
TESTFLAGS ?= -count=1 -timeout=45m

.PHONY: all build image test unit vet demo bench faults clean

all: build

## build: a static tidewatch binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/tidewatch ./cmd/tidewatch

## image: the container image tidewatch:$(VERSION), FROM scratch, built offline
image: build
	cp /etc/ssl/certs/ca-certificates.crt bin/ca-certificates.crt
	DOCKER_BUILDKIT=0 docker build -t tidewatch:$(VERSION) -t tidewatch:latest .

## vet: gofmt, go vet, and go.mod/go.sum as go mod tidy would leave them
vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy (go mod tidy -diff shows the change)"; exit 1; }
	$(GO) vet ./...

## test: every test, with the parts installed (once: apt-get, go) and the engine, registry, mail
## servers and MQTT broker started (and stopped) by the test bed before any test package starts
test: vet
	$(GO) build -o bin/bedctl ./test/bedctl
	bin/bedctl run -- $(GO) test $(TESTFLAGS) ./...

## unit: the tests that need no engine (system tests skip without the test bed)
unit:
	$(GO) test $(TESTFLAGS) ./...

## demo: engine, registry, a sample app with pending updates, and tidewatch checking it
# Ctrl-C stops it and exits 0: bedctl run gives the terminal's foreground to
# itself and the demo (not to make), and the demo ends cleanly on SIGINT.
demo: build
	$(GO) build -o bin/bedctl ./test/bedctl
	$(GO) build -o bin/demo ./test/demo
	bin/bedctl run -- bin/demo

## faults: the long fault matrices and corpora (build tag faults: registries under stress, the whole
## recreate conformance corpus, rollouts killed at every step), besides every test, on the test bed
faults: vet
	$(GO) build -o bin/bedctl ./test/bedctl
	bin/bedctl run -- $(GO) test -tags faults -count=1 -timeout=150m ./...

## bench: benchmarks with figures (detection cost, tag selection, registry client)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 60m ./test/bench/ ./core/policy/ ./registries/

clean:
	rm -rf bin .testbed
