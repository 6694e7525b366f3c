# vswitch build, test and benchmark entry points. Run as root on Debian.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/vswitch/vswitch/switch.Version=$(VERSION)
# APT_PKGS: the tools the tests and the demo run. Second line: the clients
# of the peephole tests and the DNS benchmark (ndisc6, dig, a dnsmasq
# behind the switch, dnsperf); dnsmasq-base has no service that would start.
# Third: Open vSwitch, whose afxdp ports are a reference of the e2e
# benchmark (case ovs) and whose harness case has a smoke test; the harness
# runs its own ovsdb-server and ovs-vswitchd from a temp dir, never the
# package's service.
APT_PKGS := iproute2 iputils-ping arping iperf3 ethtool tcpdump procps psmisc \
	ndisc6 bind9-dnsutils dnsmasq-base dnsperf \
	openvswitch-switch
# BENCH_APT_PKGS: DPDK testpmd for the benchmarks only (not bench-ci): with
# net_af_xdp as an e2e reference (case testpmd), with net_memif as
# bench-memring's.
BENCH_APT_PKGS := dpdk-dev librte-net-af-xdp23 librte-net-memif23 librte-mempool-ring23
# Executions per fuzz target. A count, not a duration: with a duration the
# fuzz coordinator can end on "context deadline exceeded" when a worker is
# mid-input at the deadline, a harness flake rather than a finding.
FUZZTIME ?= 30000x

.PHONY: all deps bench-deps build test unit test-priv fuzz vet bench bench-micro bench-e2e bench-dns bench-memring bench-memring-e2e bench-ci demo demo-stop clean

all: build

# deps installs the Debian packages the tests and demo use (only the missing
# ones, so it is quick on a prepared machine) and downloads the Go modules.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	$(GO) mod download

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

vet:
	@unformatted=$$("$$($(GO) env GOROOT)/bin/gofmt" -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./cmd/...

# unit runs every test that needs no privileges, with the race detector.
unit:
	$(GO) test -race -count=1 ./...

fuzz:
	@for t in $$(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' pipeline switch peephole memring | sed 's/func //'); do \
		pkg=$$(grep -rlE "^func $$t\b" --include='*_test.go' pipeline switch peephole memring | head -1 | xargs dirname); \
		echo "fuzz $$pkg $$t $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) ./$$pkg || exit 1; \
	done

# test is the README's test command: installs what it needs, then runs vet,
# unit tests with -race, brief fuzzing, and the privileged integration tests
# (network namespaces, veth, AF_XDP) against the real binaries.
test: deps build vet unit fuzz test-priv

test-priv: build
	VSWITCH_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 15m -tags integration -v ./cmd/... 2>&1 | tee /tmp/vswitch-integration.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|^ +[a-z_]+_test\.go:[0-9]+: ' ; exit $${PIPESTATUS[0]}

bench-micro:
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./bench/ ./pipeline/ ./switch/ ./peephole/ ./memring/

# bench-deps installs the missing BENCH_APT_PKGS, like deps. After deps, so
# that two apt-gets never run at once under make -j.
bench-deps: deps
	@missing=""; for p in $(BENCH_APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

bench-e2e: deps bench-deps build
	$(GO) run ./bench/vsbench e2e -bin $(CURDIR)/$(BIN) -out bench/results

# bench-dns: root; the peephole DNS responder vs dnsmasq behind vswitchd and
# behind a Linux bridge (dnsperf, 3 x 10 s per case), results into
# bench/results/dns-DATE.{json,md}.
bench-dns: deps build
	$(GO) run ./bench/dnsperf -bin $(CURDIR)/$(BIN) -out bench/results

# bench-routed: root; vswitchd's L3 gateway (routing, 1000-rule ACL) vs the
# Linux kernel as a router (plain, 1000-rule nft chain), 1/1k/100k flows,
# 3 x 10 s per case; results in bench/results/routed-DATE.{tsv,md}. Installs
# nftables if it is missing (the nft1000 reference case needs nft).
# ROUTED_FLAGS passes flags, e.g. make bench-routed ROUTED_FLAGS=-quick.
.PHONY: bench-routed
bench-routed: deps build
	@command -v nft >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nftables >/dev/null; }
	$(GO) run ./bench/routed -bin $(CURDIR)/$(BIN) -out bench/results $(ROUTED_FLAGS)

# bench-memring: root; memring pair-bench (process to process) vs two
# testpmd over net_memif, 3 x 10 s each; results in bench/results/memring-DATE.*
bench-memring: bench-deps build
	$(GO) run ./bench/memring -memring $(CURDIR)/$(BIN)/memring -out bench/results

# bench-memring-e2e: root; container -> vswitchd -> container over memring
# ports vs the same over veth + AF_XDP (Mpps, one-way latency);
# results in bench/results/memring-e2e-DATE.*
bench-memring-e2e: deps bench-deps build
	$(GO) run ./bench/memringe2e -bin $(CURDIR)/$(BIN) -out bench/results

bench: deps bench-deps build
	$(GO) run ./bench/vsbench all -bin $(CURDIR)/$(BIN) -out bench/results
	$(GO) run ./bench/dnsperf -bin $(CURDIR)/$(BIN) -out bench/results
	$(GO) run ./bench/memring -memring $(CURDIR)/$(BIN)/memring -out bench/results
	$(GO) run ./bench/memringe2e -bin $(CURDIR)/$(BIN) -out bench/results
	$(GO) run ./bench/routed -bin $(CURDIR)/$(BIN) -out bench/results

bench-ci: build
	$(GO) run ./bench/vsbench ci -bin $(CURDIR)/$(BIN) -out bench/results

demo: deps build
	./cmd/vswitchd/demo.sh up

demo-stop:
	./cmd/vswitchd/demo.sh down

clean:
	rm -rf $(BIN)
