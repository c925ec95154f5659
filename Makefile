# spawnlab — the two commands a newcomer needs:
#
#   make serve   install what is missing, build the site, serve it on :3000
#   make test    install what is missing (and Chromium), then every check
#
# and more for measuring: `make bench` (Node.js against the Rust engine),
# `make class` (a class of 100 pressing Run at once), and `make load`,
# `make soak`, `make soak-suite` (RELIABILITY.md).
#
# Every install step checks for the exact version first and does nothing
# when it is already there, so only the first run is slow.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

CARGO_LEPTOS_VERSION := 0.3.10
WASM_BINDGEN_VERSION := 0.2.130
TRUNK_VERSION        := 0.21.14
BINARYEN_VERSION     := 132

# cargo install puts tools here; make sure this shell finds them.
BIN := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
export PATH := $(BIN):$(PATH)
# wasm-opt comes from npm's binaryen (never Debian's, which breaks hydration).
BINARYEN_DIR := $(HOME)/.local/share/spawnlab/binaryen-$(BINARYEN_VERSION)

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# The tools are installed with the release profile's slow parts off (no fat
# LTO, parallel code generation): they only build this project, and
# `cargo install` honours these overrides. cargo-leptos and Trunk only
# orchestrate (rustc, wasm-bindgen and wasm-opt do the heavy work as programs
# of their own), so they are not optimized at all: cargo-leptos then installs
# in about 10 minutes on 2 cores instead of 20. wasm-bindgen rewrites every
# build's wasm itself, so it keeps its optimizations.
FAST_INSTALL := CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
ORCHESTRATOR_INSTALL := $(FAST_INSTALL) CARGO_PROFILE_RELEASE_OPT_LEVEL=0

# Incremental compilation keeps a second copy of every build for quick
# rebuilds after an edit: a third of a clean `make test`'s disk, which CI and
# a fresh machine never reuse. Off unless asked for (`make test
# CARGO_INCREMENTAL=1` while editing); `make serve` keeps cargo's default.
test class bench lint site build soak soak-suite load: export CARGO_INCREMENTAL ?= 0

.PHONY: serve test tools serve-tools trunk node browser balancers lint site build node-scripts bench class

## make serve: build the site in debug mode and serve it on http://127.0.0.1:3000.
## It runs the steps `cargo leptos build` runs (the browser build, wasm-bindgen,
## the CSS and public/ into target/site, the server), with cargo and
## wasm-bindgen alone: serving needs neither cargo-leptos (10 minutes to
## install; `make tools` adds it, for `cargo leptos watch` and live reload)
## nor Trunk (`make test`'s).
serve: node serve-tools dev-site
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] \
	  || echo "note: the scaling lab needs nginx (Debian: apt-get install nginx-light; HAProxy: apt-get install haproxy); the other labs run without it"
	@echo "serving on http://127.0.0.1:3000 (Ctrl-C stops it)"
	target/leptos/debug/spawnlab --addr 127.0.0.1:3000 --site-dir target/site

# The same target folders, packages and features as `cargo leptos build`, so
# either one reuses what the other compiled.
FRONT_WASM := target/front/wasm32-unknown-unknown/debug/app.wasm
SITE_PKG   := target/site/pkg
.PHONY: dev-site
dev-site: serve-tools
	@echo "building the browser bundle (a first build takes about 2 minutes)"
	cargo build --package=app --lib --target-dir=target/front --target=wasm32-unknown-unknown --no-default-features --features=hydrate
	wasm-bindgen --target web --no-typescript --out-dir $(SITE_PKG) --out-name spawnlab $(FRONT_WASM)
	@# The page asks for pkg/spawnlab.wasm (LEPTOS_OUTPUT_NAME, .cargo/config.toml).
	mv -f $(SITE_PKG)/spawnlab_bg.wasm $(SITE_PKG)/spawnlab.wasm
	@# A release build's precompressed copies would be older than this bundle.
	rm -f $(SITE_PKG)/*.br $(SITE_PKG)/*.gz
	cp style/main.css $(SITE_PKG)/spawnlab.css
	cp -R public/. target/site/
	@echo "building the server (a first build takes about 5 minutes)"
	cargo build --package=server --bin=spawnlab --target-dir=target/leptos --no-default-features

## make test: formatting, lints, the site and client-only builds, the Node.js
## scripts' own checks, every test (a short `spawnlab bench --quick` among them)
test: node tools browser balancers lint site build node-scripts
	cargo test --workspace

## make bundle-size: build the release site as a host would
## (`cargo leptos build --release --precompress`) and print what a lab page
## downloads before its lab works: the wasm and its JavaScript, raw, gzip and
## brotli, against the 200 KB (brotli) the project aims for; it fails when
## a lab page is over that.
.PHONY: bundle-size
bundle-size: node tools
	cargo leptos build --release --precompress
	@cd target/site/pkg && total=0; \
	printf '%-16s %10s %10s %10s\n' file bytes gzip brotli; \
	for f in spawnlab.wasm spawnlab.js; do \
	  br=$$(stat -c %s $$f.br); total=$$((total + br)); \
	  printf '%-16s %10s %10s %10s\n' $$f $$(stat -c %s $$f) $$(stat -c %s $$f.gz) $$br; \
	done; \
	printf 'a lab page: %s bytes with brotli (the goal: 200000 or fewer)\n' $$total; \
	if [ $$total -gt 200000 ]; then echo "over the 200 KB budget by $$((total - 200000)) bytes" >&2; exit 1; fi

## make bench: Node.js and the Rust engine side by side, the full pass
## (a few minutes); `target/debug/spawnlab bench --json` for raw samples.
bench: node build
	target/debug/spawnlab bench

## make class: 100 learners press Run within one second, on the shipped
## defaults and Node.js, the four models mixed; prints how long they waited
## (about a minute). `make test` runs the same with 20.
class: node tools site build
	SPAWNLAB_CLASS_SIZE=100 cargo test -p spawnlab-tests --test e2e -- class:: --nocapture

## The toolchain cargo-leptos and Trunk need, each at its pinned version.
tools: serve-tools cargo-leptos wasm-opt trunk

## What `make serve` needs: the wasm target and the wasm-bindgen that turns
## the browser build into the page's bundle.
serve-tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown \
	  || { echo "adding the wasm32-unknown-unknown target (seconds)"; rustup target add wasm32-unknown-unknown; }
	@# --locked fails for this version (a yanked webpki-roots), so it is left off.
	@wasm-bindgen --version 2>/dev/null | grep -qx 'wasm-bindgen $(WASM_BINDGEN_VERSION)' \
	  || { echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) (about 3 minutes)"; \
	       $(FAST_INSTALL) cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); }

## cargo-leptos, which `make test` (and `cargo leptos watch`) builds the site with.
.PHONY: cargo-leptos wasm-opt
cargo-leptos:
	@cargo leptos --version 2>/dev/null | grep -qx 'cargo-leptos $(CARGO_LEPTOS_VERSION)' \
	  || { echo "installing cargo-leptos $(CARGO_LEPTOS_VERSION) (about 10 minutes on 2 cores)"; \
	       $(ORCHESTRATOR_INSTALL) cargo install cargo-leptos --version $(CARGO_LEPTOS_VERSION) --locked; }

## wasm-opt, which release builds (`cargo leptos build --release`) run.
wasm-opt: node
	@wasm-opt --version 2>/dev/null | grep -q '^wasm-opt version $(BINARYEN_VERSION) ' \
	  || { echo "installing wasm-opt from npm binaryen@$(BINARYEN_VERSION).0.0 (seconds)"; \
	       npm install --silent --no-audit --no-fund --prefix "$(BINARYEN_DIR)" binaryen@$(BINARYEN_VERSION).0.0; \
	       ln -sf "$(BINARYEN_DIR)/node_modules/binaryen/bin/wasm-opt" "$(BIN)/wasm-opt"; }

## Trunk builds the client-only bundle `make test` checks.
trunk:
	@trunk --version 2>/dev/null | grep -qx 'trunk $(TRUNK_VERSION)' \
	  || { echo "installing trunk $(TRUNK_VERSION) (5 to 8 minutes)"; \
	       $(ORCHESTRATOR_INSTALL) cargo install trunk --version $(TRUNK_VERSION) --locked; }

## Node.js 18 or newer, which the labs run by default (and npm, for wasm-opt).
## Debian 12 ships 18; a newer one already on PATH is kept.
NODE_MIN_MAJOR := 18
node:
	@major=$$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/'); \
	if [ -z "$$major" ] || [ "$$major" -lt $(NODE_MIN_MAJOR) ]; then \
	  echo "installing Node.js from Debian (the labs need v$(NODE_MIN_MAJOR) or newer; found: $${major:-none})"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; \
	fi

## The real load balancers the scaling lab puts in front of its instances:
## Debian's nginx-light and HAProxy (`make serve` does not install them; the
## scaling page says how when they are missing). Their own services are not
## needed: each run starts its balancer on a loopback port of its own.
balancers:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || NEED="nginx-light"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || NEED="$${NEED:-} haproxy"; \
	if [ -n "$${NEED:-}" ]; then \
	  echo "installing$${NEED:+ $$NEED} from Debian for the scaling lab (under a minute)"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$NEED >/dev/null; \
	fi

## The Node.js scripts' own checks, with real node (about 10 seconds).
node-scripts: node
	node server/node/test/check.js

## Debian's Chromium and its WebDriver, and npm's axe-core (the browser tests
## inject it to audit every page; tests/src/browser.rs looks for it here).
AXE_VERSION := 4.14.1
AXE_DIR := $(HOME)/.local/share/spawnlab/axe-core
browser: node
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	  || { echo "installing chromium and chromium-driver from Debian (about a minute)"; \
	       $(SUDO) apt-get update -qq; \
	       DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }
	@grep -qs '"version": "$(AXE_VERSION)"' "$(AXE_DIR)/node_modules/axe-core/package.json" \
	  || { echo "installing axe-core $(AXE_VERSION) from npm (seconds)"; \
	       npm install --silent --no-audit --no-fund --prefix "$(AXE_DIR)" axe-core@$(AXE_VERSION); }

## Formatting and lints, for the server build and for the browser build.
lint: serve-tools
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings
	cargo clippy -p app --lib --target wasm32-unknown-unknown --no-default-features --features csr -- -D warnings

## The site exactly as `make serve` builds it (hydrating bundle and CSS in
## target/site, and the server), and the client-only bundle in
## target/trunk-dist. cargo-leptos builds its server under target/leptos,
## apart from the workspace's, so neither rebuilds the other.
site: tools
	cargo leptos build
	trunk build --release

## The server binary the end-to-end tests start.
build:
	cargo build --workspace

# Reliability (RELIABILITY.md): a storm, a soak, and the suite again and again.
.PHONY: load soak soak-suite

## make load: 100 learners (half behind one address, half each on its own)
## press Run at the same instant on the shipped defaults while 5 readers load
## pages; prints the waits, the page times and the server's memory and open
## files before and after (about 2 minutes). `make test` runs it with 10.
load: node tools site build
	SPAWNLAB_LOAD_LEARNERS=100 cargo test -p spawnlab-tests --test e2e -- load:: --nocapture

## make soak: 1000 random runs on one server, both runtimes and every model,
## cancelled, disconnected, killed or past their deadline at random, among
## malformed frames; then checks nothing is left (about 13 minutes).
## `make test` runs it with 40; SPAWNLAB_SOAK_SEED replays another draw.
soak: node tools site build
	SPAWNLAB_SOAK_RUNS=1000 cargo test -p spawnlab-tests --test e2e -- soak:: --nocapture

## make soak-suite: the whole end-to-end suite 20 times in a row (SOAK_ROUNDS),
## stopping at the first failure and naming its round (far longer than `make test`).
SOAK_ROUNDS ?= 20
soak-suite: node tools site build
	@for round in $$(seq 1 $(SOAK_ROUNDS)); do \
	  echo "soak-suite: round $$round of $(SOAK_ROUNDS)"; \
	  cargo test -p spawnlab-tests --test e2e \
	    || { echo "soak-suite: round $$round of $(SOAK_ROUNDS) failed"; exit 1; }; \
	done; \
	echo "soak-suite: all $(SOAK_ROUNDS) rounds passed"
