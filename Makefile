# sdskit — see README.md. Every target works on a fresh clone; tools are built from
# pinned versions into ./bin (no network beyond the Go module proxy).

GO        ?= go
BIN       := $(CURDIR)/bin
BUF       := $(BIN)/buf
PGG       := $(BIN)/protoc-gen-go
SDKGO     := $(BIN)/protoc-gen-sdskit-go
GENMOD    := tools/generators
GOPKGS    := ./...
FUZZTIME  ?= 50000x
# sdk-python's virtualenv (pinned tools of sdk-python/requirements-dev.txt, protoc included).
PYTHON    ?= python3
VENV      := build/venv
VPY       := $(VENV)/bin/python
VENVSTAMP := $(VENV)/.installed
NPM       ?= npm
# sdk-ts's npm dependencies (protoc-gen-es, TypeScript, ...), installed from its lockfile.
TSDEPS    := sdk-ts/node_modules/.package-lock.json

.PHONY: all generate check lint-idl breaking drift golden plugin test test-go test-race fuzz bench demo tools vet clean lib test-cabi py-venv test-python bench-python sdk-python wasm sdk-ts test-ts bench-ts demo-ts py-install test-readme test-interop simulate

all: test

$(BIN):
	mkdir -p $(BIN)

# buf lives in its own module (tools/buf) so its dependencies stay out of ours.
$(BUF): tools/buf/go.mod | $(BIN)
	cd tools/buf && $(GO) build -o $(BUF) github.com/bufbuild/buf/cmd/buf

# protoc-gen-go is built from the same google.golang.org/protobuf version as the runtime
# the generated code links against, so generator and runtime can never disagree.
$(PGG): go.mod | $(BIN)
	$(GO) build -o $(PGG) google.golang.org/protobuf/cmd/protoc-gen-go

# protoc-gen-sdskit-go (the sdskit Go generator) lives in its own module, tools/generators,
# which links the generated gen/go/sdskit/v1 for the IDL's custom options. It is always
# rebuilt (cheap with the build cache) so it never lags behind its source.
plugin: | $(BIN)
	cd $(GENMOD) && $(GO) build -o $(SDKGO) ./cmd/protoc-gen-sdskit-go
	cd $(GENMOD) && $(GO) build -o $(BIN)/protoc-gen-sdskit-ts ./cmd/protoc-gen-sdskit-ts
	cd $(GENMOD) && $(GO) build -o $(BIN)/protoc-gen-sdskit-c ./cmd/protoc-gen-sdskit-c
	cd $(GENMOD) && $(GO) build -o $(BIN)/protoc-gen-sdskit-python ./cmd/protoc-gen-sdskit-python

tools: $(BUF) $(PGG) plugin

# npm ci installs exactly the committed lockfile (better-sqlite3 builds from source with
# node-gyp when no prebuilt binary can be downloaded: a few minutes on 2 cores). node-gyp
# needs Node's headers: NodeSource's nodejs ships them in /usr/include/node, so it never
# has to download them.
NODEDIR ?= $(if $(wildcard /usr/include/node/node_api.h),/usr,)
$(TSDEPS): sdk-ts/package.json sdk-ts/package-lock.json
	cd sdk-ts && $(if $(NODEDIR),npm_config_nodedir=$(NODEDIR) )$(NPM) ci --no-audit --no-fund

## generate: regenerate all code from the IDL, from a clean gen/go
# 1. protoc-gen-go alone (buf.gen.bootstrap.yaml, clean: true): fresh *.pb.go, which
#    compile on their own, so the plugin can link the current options (docs/idl.md);
# 2. build protoc-gen-sdskit-go against them;
# 3. every plugin (buf.gen.yaml, clean: true), then compile the result.
generate: $(BUF) $(PGG) $(TSDEPS) $(VENVSTAMP)
	$(BUF) generate --template buf.gen.bootstrap.yaml
	$(MAKE) --no-print-directory plugin
	$(BUF) generate
	rm -rf sdk-python/src/sdskit/v1
	$(BUF) generate --template buf.gen.python.yaml
	$(VPY) sdk-python/scripts/fix_pyi.py sdk-python/src/sdskit/v1
	$(GO) build ./gen/...

## check: drift, lint and compatibility checks of the IDL, generator golden tests
check: drift lint-idl breaking golden

## golden: the generators' own tests (golden files of a fixture IDL, validation errors)
golden:
	cd $(GENMOD) && $(GO) vet ./... && $(GO) test -count=1 ./...

drift: generate
	@git add -N gen sdk-ts/src/gen sdk-python/src/sdskit/v1 >/dev/null 2>&1 || true
	@if ! git diff --exit-code --stat -- gen sdk-ts/src/gen sdk-python/src/sdskit/v1; then \
		echo "generated code drifted from the IDL: run 'make generate' and commit the result" >&2; exit 1; fi

lint-idl: $(BUF)
	cd idl && $(BUF) lint

# Compare against the committed image of the last released IDL (idl/baseline.binpb):
# CI runs in a fresh clone, so a git-branch baseline would prove nothing.
breaking: $(BUF)
	@cd idl && $(BUF) breaking --against baseline.binpb || { \
		echo "buf breaking: the IDL change above is incompatible with the released IDL (idl/baseline.binpb)." >&2; \
		echo "Add a new field or rpc instead of changing one; for an intended break see docs/idl.md." >&2; exit 1; }

vet:
	$(GO) vet $(GOPKGS)
	cd $(GENMOD) && $(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./core/wasm
	@test -z "$$(gofmt -l core gen tools sdk-go 2>/dev/null)" || (gofmt -l core gen tools sdk-go; echo "gofmt needed" >&2; exit 1)

## test: every test of the repository
test: test-go test-cabi test-python test-ts test-readme

## test-readme: every code block of README.md runs (Go, Python, TypeScript) or is checked
# (make commands), see docs/readme/readme_test.go
test-readme: py-install sdk-ts
	$(GO) test -count=1 -tags readme ./docs/readme

## test-all: also the TypeScript SDK (Node + Chromium); joins `test` once it is green
test-all: test test-ts

## test-go: vet, the Go tests (the fuzz targets' seed corpora included) and the race detector on the core
test-go: vet
	$(GO) test -count=1 $(GOPKGS)
	$(GO) test -count=1 -race ./core/...

## wasm: the core as WebAssembly (core/wasm, GOOS=js) for the TypeScript SDK
TSDIST := sdk-ts/dist
wasm:
	@mkdir -p $(TSDIST)
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags="-s -w" -o $(TSDIST)/sdskit.wasm ./core/wasm

## sdk-ts: the TypeScript SDK package in sdk-ts/dist: sdskit.wasm, Go's wasm_exec.js
# (taken from this Go toolchain at build time, wrapped as an ES module, not committed)
# and the compiled TypeScript with its .d.ts
sdk-ts: $(TSDEPS) wasm
	node sdk-ts/scripts/wrap-wasm-exec.mjs "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" $(TSDIST)/wasm_exec.js
	cd sdk-ts && node_modules/.bin/tsc -p tsconfig.json

## test-ts: the TypeScript SDK's tests under Node (conformance scenarios, concurrency,
# failing backends, SQLite restart, bad input) and in Chromium (IndexedDB)
test-ts: sdk-ts $(BUF) $(VENVSTAMP)
	rm -rf sdk-ts/build/fixture
	$(BUF) generate tools/generators/testdata/fixture.binpb -o sdk-ts/build/fixture --template \
		'{"version":"v2","plugins":[{"local":"sdk-ts/node_modules/.bin/protoc-gen-es","out":".","opt":["target=ts","import_extension=js"],"include_imports":true}]}'
	cp tools/generators/testdata/tsgolden/fixture/v1/*_sdk.ts sdk-ts/build/fixture/fixture/v1/
	cd sdk-ts && node_modules/.bin/tsc -p scripts/fixture.tsconfig.json
	cd sdk-ts && rm -rf build/test && node_modules/.bin/tsc -p tsconfig.test.json
	scripts/with-nats.sh sh -c 'cd sdk-ts && node --test --test-reporter=spec build/test/*.test.js'

## bench-ts: the TypeScript SDK against @waku/sds 0.0.8 in one Node process
# (@waku/sds is installed from npm into sdk-ts/bench/node_modules from its lockfile, never vendored.)
bench-ts: sdk-ts
	cd sdk-ts/bench && $(NPM) ci --no-audit --no-fund
	cd sdk-ts/bench && node bench.mjs

## test-interop: the live interop test against @waku/sds 0.0.8 (docs/interop.md): sdskit
# and @waku/sds MessageChannel participants on one channel in one Node process, bytes both
# ways through a bus the test controls; one PASS/FAIL line per behaviour, non-zero exit on
# any failure. @waku/sds is installed from npm into interop/node_modules from the committed
# lockfile (never vendored); the SDK is imported from sdk-ts/dist.
test-interop: sdk-ts
	cd interop && $(NPM) ci --no-audit --no-fund --loglevel=error
	cd interop && rm -rf build && ../sdk-ts/node_modules/.bin/tsc -p tsconfig.json
	cd interop && node build/interop.js

## lib: the core as a C shared library (core/cabi) + its generated header gen/c/sdskit.h
# Always rebuilt (cheap with the build cache). Stripped: it ships inside sdk-python.
LIB := $(CURDIR)/build/libsdskit.so
lib:
	@mkdir -p build
	$(GO) build -buildmode=c-shared -trimpath -ldflags="-s -w" -o $(LIB) ./core/cabi

## test-cabi: the C test program of the ABI's error paths and host calls (core/cabi/ctest)
test-cabi: lib
	$(CC) -Wall -Wextra -Werror -O1 -std=c11 -D_DEFAULT_SOURCE -Igen/c core/cabi/ctest/abi_test.c \
		-Lbuild -lsdskit -Wl,-rpath,$(CURDIR)/build -lpthread -o build/abi_test
	timeout 120 ./build/abi_test

## py-venv: build/venv with sdk-python's pinned development tools (protoc, mypy, pytest)
py-venv: $(VENVSTAMP)
$(VENVSTAMP): sdk-python/requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check -r sdk-python/requirements-dev.txt
	touch $@

## test-python: the Python SDK: its library bundled into the package, installed into the
# venv, pytest (conformance scenarios, threads, asyncio, failing backends, restart, bad
# input, library mismatch) and mypy --strict
test-python: py-install
	cd sdk-python && ../$(VPY) -m mypy --strict
	$(VPY) -m mypy --strict demo/python/peer.py
	cd sdk-python && ../$(VPY) -m pytest -q tests

## sdk-python: the Python SDK's wheel (core library bundled) in build/dist
sdk-python: lib $(VENVSTAMP)
	mkdir -p sdk-python/src/sdskit/_lib && cp $(LIB) sdk-python/src/sdskit/_lib/libsdskit.so
	$(VPY) -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation -w build/dist ./sdk-python

## bench-python: the Python SDK's benchmark table (docs/benchmarks.md)
bench-python: test-python
	cd sdk-python && ../$(VPY) bench/bench.py

## fuzz: run every fuzz target for FUZZTIME each (seed corpora in each package's testdata/fuzz). An
# execution count (Nx), not a duration: Go 1.26's coordinator can report a spurious
# "context deadline exceeded" when a duration runs out on a busy machine (go.dev/issue/75804)
FUZZPKGS := ./core/wire ./core/bloom ./core/hash ./core/profile ./core/gentest
fuzz:
	@for p in $(FUZZPKGS); do \
		for t in $$($(GO) test -list 'Fuzz.*' $$p | grep ^Fuzz); do \
			echo "== $$p $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p || exit 1; done; done

## bench: the core benchmarks (results recorded in docs/benchmarks.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./core/...

## demo-ts: the TypeScript demo participant (demo/ts/peer.ts → demo/ts/dist/peer.js). It
# imports the SDK by package name, as an application does, through links to sdk-ts.
demo-ts: sdk-ts
	mkdir -p demo/ts/node_modules/@sdskit demo/ts/node_modules/@types
	ln -sfn ../../../../sdk-ts demo/ts/node_modules/@sdskit/sdk
	ln -sfn ../../../sdk-ts/node_modules/better-sqlite3 demo/ts/node_modules/better-sqlite3
	ln -sfn ../../../../sdk-ts/node_modules/@types/better-sqlite3 demo/ts/node_modules/@types/better-sqlite3
	cd demo/ts && ../../sdk-ts/node_modules/.bin/tsc -p tsconfig.json

## py-install: the Python SDK, its core library bundled, installed into build/venv
py-install: lib $(VENVSTAMP)
	mkdir -p sdk-python/src/sdskit/_lib && cp $(LIB) sdk-python/src/sdskit/_lib/libsdskit.so
	$(VPY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation ./sdk-python

## demo: the main job — a group chat of a Go, a Python and a TypeScript participant over an
# embedded NATS server, each on SQLite, dropping/duplicating/delaying what they receive,
# one killed with SIGKILL midway and restarted from its databases (docs/demo.md).
# DEMOFLAGS passes flags, e.g. make demo DEMOFLAGS="--messages 50 --loss 0.3".
demo: py-install demo-ts
	$(GO) run ./cmd/sdskit demo $(DEMOFLAGS)

## simulate: the protocol simulator — N participants on the core with a manual clock and
# a lossy, partitioned, churning in-memory network; table on stdout, summary.json and PNG
# plots in SIMOUT (docs/simulator.md). SIMFLAGS passes flags, e.g. SIMFLAGS="-peers 200".
SIMOUT ?= build/sim
simulate:
	$(GO) run ./cmd/sdskit simulate -out $(SIMOUT) $(SIMFLAGS)

clean:
	rm -rf $(BIN) build
