# dynamokv developer entry points. `make test` is the README's test command and what .ci/run calls;
# every target installs dependencies first when node_modules is missing or older than the lockfile.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Node 24 is pinned as an npm dependency (the `node` package); putting node_modules/.bin first makes
# every `node` in these recipes that binary rather than the older system one.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

# npm rewrites node_modules/.package-lock.json on every install, so it is older than
# package-lock.json exactly when the lockfile changed since the last install.
INSTALL_STAMP := node_modules/.package-lock.json

# Extra arguments, e.g. `make start ARGS="--data-dir /tmp/dkv"` or `make bench BENCH_ARGS="--duration 5"`.
ARGS ?=
BENCH_ARGS ?=

.PHONY: help install build typecheck lint tools test start bench clean

help:
	@echo 'make start    build, then start a local 3-node cluster on 127.0.0.1:8080-8082 (ctrl-c stops it)'
	@echo 'make test     install if needed, build, lint + layering check, run every test'
	@echo 'make install  npm ci when node_modules is missing or older than package-lock.json'
	@echo 'make build    compile TypeScript to dist/'
	@echo 'make lint     eslint and the dependency-cruiser layering rules'
	@echo 'make tools    build (once per machine, cached) the Kubernetes control plane and helm; install promtool'
	@echo 'make bench    YCSB-style suite: bare node:http, 1 node, 3 nodes, etcd and Redis when installed'
	@echo 'make clean    remove build output (dist/, coverage/); data/ is left alone'

install: $(INSTALL_STAMP)

$(INSTALL_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: install
	tsc -p tsconfig.json

typecheck: install
	tsc -p tsconfig.json --noEmit

lint: install
	eslint .
	depcruise --config .dependency-cruiser.cjs node/src client/src cli/src operator/src

# The operator and chart tests run on a real kube-apiserver, kube-controller-manager and etcd, and
# use real helm and promtool. The first two are built from the Go module proxy once per machine
# (about 5 minutes on 2 cores) and cached under ~/.cache/dynamokv; promtool comes from Debian.
tools:
	bash test/k8s/build.sh
	bash test/helm/build-helm.sh
	bash test/monitoring/ensure-promtool.sh

# jest runs with --experimental-vm-modules so that CommonJS tests can load ESM-only packages.
test: build lint tools
	NODE_OPTIONS=--experimental-vm-modules jest --ci

# A local cluster of 3 nodes on 127.0.0.1:8080-8082; ARGS="--nodes 5" etc. change it.
start: build
	node dist/cli/src/main.js dev $(ARGS)

bench: build
	node dist/bench/ycsb/main.js $(BENCH_ARGS)

clean:
	rm -rf dist coverage bench/results/tmp
