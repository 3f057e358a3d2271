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
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## install the Debian packages tests and demos use (idempotent)
	@hack/deps.sh

.PHONY: build
build: ## build kubectl-shark (and shark-agent on Linux) into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kubectl-shark ./cmd/kubectl-shark
	@if [ -d cmd/shark-agent ] && ls cmd/shark-agent/*.go >/dev/null 2>&1; then \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/shark-agent ./cmd/shark-agent; fi

.PHONY: test
test: deps ## unit, race, golden, tshark-oracle, packaging, short fuzz, dashboard and e2e (local cluster) tests
	@# Two platforms (this one, and windows/arm64 for the .exe case) keep a
	@# cold run well inside CI's time limit; a release builds all six.
	$(MAKE) dist DIST_PLATFORMS=linux/$(GOARCH),windows/arm64
	$(GO) vet ./...
	@test -z "$$(gofmt -l cmd pkg hack internal test 2>/dev/null)" || { echo "gofmt needed:"; gofmt -l cmd pkg hack internal test; exit 1; }
	SHARK_DIST=$(CURDIR)/dist $(GO) test -count=1 -timeout 30m ./...
	$(GO) test -count=1 -race -short ./pkg/pipeline/... ./pkg/assemble/... ./pkg/hub/...
	$(GO) test -count=1 -race ./pkg/worker/... ./pkg/store/... ./pkg/hubclient/... ./cmd/shark-agent/...
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh
	$(MAKE) ui-test
	$(MAKE) e2e

.PHONY: ui ui-test
ui: ## build the dashboard (pkg/ui/dist) from its sources with npm; commit the result
	hack/ui.sh build
ui-test: ## dashboard tests: vitest, the dist freshness check, playwright against a replaying hub
	hack/ui.sh test

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 10s)
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: bench
bench: deps build ## record a >=200 MB capture and compare us with tshark and tcpdump
	hack/bench.sh

.PHONY: demo demo-offline demo-down demo-images demo-load
demo: ## the demo shop on the local cluster, tapped live (root; first run builds Kubernetes, ~10 min)
	@hack/demo.sh all
demo-offline: build ## tap a recorded capture of real traffic, no cluster
	@hack/demo.sh offline
demo-down: ## delete the demo namespace; DOWN=cluster also stops the cluster
	@hack/demo.sh down
demo-images: ## build the demo images (demoapp, redis, curl, postgres) into dist/demo/
	@hack/demo.sh images
demo-load: ## build the agent and demo images and load them into the cluster
	@hack/demo.sh load

.PHONY: testdata
testdata: deps ## re-record the captures in testdata/ from real clients and servers
	hack/record-testdata.sh

NODES ?= 1
GOARCH ?= $(shell $(GO) env GOARCH)
IMAGE ?= localhost/shark/agent:dev
AGENT_ARCHES ?= amd64 arm64
comma := ,
space := $(subst ,, )

.PHONY: cluster-up cluster-down cluster-status cluster-build image load e2e
cluster-up: ## start the local cluster (root; NODES=2 for two nodes; the first run builds Kubernetes, ~10 min)
	NODES=$(NODES) hack/cluster up
cluster-down: ## stop the local cluster and remove every trace of it
	hack/cluster down
cluster-status: ## what runs; exit 0 when up and healthy
	hack/cluster status
cluster-build: ## install host packages, build and cache the cluster's binaries and images
	hack/cluster build
image: $(addprefix image-,$(AGENT_ARCHES)) ## the shark-agent image, without Docker: OCI archives dist/shark-agent-ARCH.tar (amd64, arm64) and their index dist/shark-agent.oci.tar
	$(GO) run ./hack/image -t $(IMAGE) --format oci --platform $(subst $(space),$(comma),$(addprefix linux/,$(AGENT_ARCHES))) \
		-o dist/shark-agent.oci.tar --go ./cmd/shark-agent --entrypoint /shark-agent
image-%: # the shark-agent image of one architecture
	mkdir -p dist
	$(GO) run ./hack/image -t $(IMAGE) --format oci --platform linux/$* -o dist/shark-agent-$*.tar \
		--go ./cmd/shark-agent --entrypoint /shark-agent
load: image-$(GOARCH) ## load the shark-agent image of this machine's architecture into every node
	hack/cluster load dist/shark-agent-$(GOARCH).tar
e2e: ## end-to-end tests on the local cluster (root; leaves the cluster as found)
	$(GO) test -tags e2e -timeout 60m -v -count=1 ./test/e2e/...

.PHONY: bench-live
bench-live: deps build ## live capture benchmark: our worker vs tcpdump on a veth pair (root)
	hack/bench-live.sh

.PHONY: generate
generate: ## rebuild the eBPF objects of pkg/tracer from bpf/ (clang, llvm-strip, libbpf-dev)
	$(GO) generate ./pkg/tracer/...

# Release archives. VERSION is made krew-valid (an untagged build becomes
# v0.0.0-dev-<describe>); times in the archives are the last commit's.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DIST_BASE_URL ?=

.PHONY: dist test-packaging plugin-yaml
dist: ## release archives (linux/darwin/windows x amd64/arm64), sha256sums.txt, krew manifest dist/shark.yaml (DIST_BASE_URL=file://$$PWD/dist for local uris)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./hack/dist -version '$(VERSION)' -o dist $(if $(DIST_BASE_URL),-base-url '$(DIST_BASE_URL)') $(if $(DIST_PLATFORMS),-platforms '$(DIST_PLATFORMS)')
	@echo "install locally: kubectl krew install --manifest=dist/shark.yaml --archive=dist/$$(cd dist && ls kubectl-shark_*_$$($(GO) env GOOS)_$$($(GO) env GOARCH).tar.gz)"
test-packaging: dist ## krew rules on dist/shark.yaml and plugin.yaml, the archives, a krew-style install used through kubectl
	SHARK_DIST=$(CURDIR)/dist $(GO) test -count=1 -v ./test/packaging/ ./hack/dist/ ./hack/krew/
plugin-yaml: dist ## at a release (VERSION=vX.Y.Z): plugin.yaml becomes dist/shark.yaml, the manifest to submit to krew-index
	cp dist/shark.yaml plugin.yaml

.PHONY: lint
lint: ## gofmt, go vet, go mod tidy check
	@test -z "$$(gofmt -l cmd pkg hack internal)"
	$(GO) vet ./...
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN) dist
