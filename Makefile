# kubectl shark. `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

MODULE   := github.com/kubectl-shark/kubectl-shark
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X $(MODULE)/pkg/version.Version=$(VERSION)
BIN      := bin
GO       ?= go
FUZZTIME ?= 10s
export GOFLAGS := -buildvcs=false

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## install the Debian packages tests and demos use (idempotent)
	@hack/deps.sh

.PHONY: build
build: ## build kubectl-shark (and shark-agent on Linux) into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kubectl-shark ./cmd/kubectl-shark
	@if [ -d cmd/shark-agent ] && ls cmd/shark-agent/*.go >/dev/null 2>&1; then \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/shark-agent ./cmd/shark-agent; fi

.PHONY: test
test: deps ## unit, race, golden, tshark-oracle and short fuzz tests
	$(GO) vet ./...
	@test -z "$$(gofmt -l cmd pkg hack internal 2>/dev/null)" || { echo "gofmt needed:"; gofmt -l cmd pkg hack internal; exit 1; }
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race -short ./pkg/pipeline/... ./pkg/assemble/...
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 10s)
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: bench
bench: deps build ## record a >=200 MB capture and compare us with tshark and tcpdump
	hack/bench.sh

.PHONY: demo
demo: deps build ## build the plugin and tap a capture of real traffic
	@hack/demo.sh

.PHONY: testdata
testdata: deps ## re-record the captures in testdata/ from real clients and servers
	hack/record-testdata.sh

.PHONY: lint
lint: ## gofmt, go vet, go mod tidy check
	@test -z "$$(gofmt -l cmd pkg hack internal)"
	$(GO) vet ./...
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN) dist
