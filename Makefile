# Hearth build, test and packaging. CI runs `bash .ci/run`, which runs `make test`.
#
# go.mod asks for Go 1.27.3; a machine with an older Go fetches it from the module proxy.
export GOTOOLCHAIN := go1.27.3
# goolm: mautrix crypto (used by the E2EE tests) in pure Go; cgo libolm is not installed.
export GOFLAGS := -buildvcs=false -tags=goolm

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO      ?= go
MODULE  := github.com/hearth-home/hearth
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X $(MODULE)/appliance.version=$(VERSION)

# Debian packages that the tests need, installed by `make deps` only when missing.
APT_PACKAGES :=
# MQTT adapter tests (devices/mqtt) run against a real Mosquitto too.
APT_PACKAGES += mosquitto
# The Dendrite interop test (matrix/federation) builds Dendrite, whose SQLite driver needs cgo.
APT_PACKAGES += gcc libc6-dev
# Later issues (browser tests of the web UI):
# APT_PACKAGES += chromium chromium-driver

JSCLIENT := test/jsclient

COMPLEMENT_IMAGE ?= localhost/hearth-complement:latest
COMPLEMENT_CTX   := bin/complement-context
PODMAN_SETUP     := ../shared/tools/podman-setup.sh

.PHONY: all build run test deps fmt-check vet unit complement-image bench bench-devices bench-search bench-large-join soak clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/hearth ./cmd/hearth

run: build
	bin/hearth serve --data ./hearth-data --listen 127.0.0.1:8008 --server-name localhost

test: deps fmt-check vet unit

# Lists Go files whose formatting differs from gofmt's (the toolchain's own gofmt, not the
# machine's older one) and fails if there are any. Never rewrites files.
fmt-check:
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/node_modules/*' -not -path './bin/*'); \
	bad=$$([ -z "$$files" ] || "$$($(GO) env GOROOT)/bin/gofmt" -l $$files); \
	if [ -n "$$bad" ]; then echo "gofmt: these files need formatting:"; echo "$$bad"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -timeout 25m ./...

# Idempotent and quiet when everything is present.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing Debian packages:$$missing"; \
		apt-get update -q >/dev/null; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	fi
	@if [ -f $(JSCLIENT)/package.json ]; then \
		stamp=$(JSCLIENT)/node_modules/.hearth-deps-stamp; \
		if [ ! -f "$$stamp" ] || [ $(JSCLIENT)/package.json -nt "$$stamp" ] || \
		   { [ -f $(JSCLIENT)/package-lock.json ] && [ $(JSCLIENT)/package-lock.json -nt "$$stamp" ]; }; then \
			echo "deps: installing npm packages in $(JSCLIENT)"; \
			if [ -f $(JSCLIENT)/package-lock.json ]; then cmd=ci; else cmd=install; fi; \
			(cd $(JSCLIENT) && npm $$cmd --no-audit --no-fund --loglevel=error); \
			mkdir -p $(JSCLIENT)/node_modules && touch "$$stamp"; \
		fi; \
	fi

# The Complement image: a FROM scratch image holding the static binary and its config
# (image/complement/). Installs, configures and starts rootful Podman first (idempotent).
complement-image:
	@bash $(PODMAN_SETUP) >/dev/null
	rm -rf $(COMPLEMENT_CTX)
	mkdir -p $(COMPLEMENT_CTX)/tmp $(COMPLEMENT_CTX)/data
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(COMPLEMENT_CTX)/hearth ./cmd/hearth
	cp image/complement/hearth.yaml $(COMPLEMENT_CTX)/hearth.yaml
	podman build --quiet -f image/complement/Containerfile -t $(COMPLEMENT_IMAGE) $(COMPLEMENT_CTX)

bench:
	$(GO) run ./cmd/hearth-bench -mode "$${BENCH_MODE:-quick}"

# Device bridge: 100 MQTT sensors at 10 updates/s and commands, in-process (docs/bench/devices.md).
bench-devices:
	$(GO) run ./cmd/hearth-bench -devices -mode "$${BENCH_MODE:-quick}"

# Search index comparison (Badger postings vs bleve); bench/searchcmp is its own module, so
# bleve stays out of the appliance and out of `make test`.
bench-search:
	cd bench/searchcmp && $(GO) run . -out ../../docs/bench/search-index.md

# Joining a generated 10,000-member room over federation: the joining server's peak RSS and the
# join's time (docs/bench/large-join.md). LARGE_JOIN_FLAGS adds e.g. -joiners, -room-version.
bench-large-join: build
	$(GO) run ./cmd/hearth-bench large-join -hearth-bin bin/hearth -members "$${LARGE_JOIN_MEMBERS:-10000}" $${LARGE_JOIN_FLAGS:-}

soak:
	$(GO) run ./cmd/hearth-bench -soak -cycles 20

# Removes build output only; ./hearth-data (your homeserver's data) is kept.
clean:
	rm -rf bin/ coverage.out coverage.html *.coverprofile
	$(GO) clean -testcache
