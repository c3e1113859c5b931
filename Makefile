# sdskit — see README.md. Every target works on a fresh clone; tools are built from
# pinned versions into ./bin (no network beyond the Go module proxy).

GO        ?= go
BIN       := $(CURDIR)/bin
BUF       := $(BIN)/buf
PGG       := $(BIN)/protoc-gen-go
SDKGO     := $(BIN)/protoc-gen-sdskit-go
GENMOD    := tools/generators
GOPKGS    := ./...
FUZZTIME  ?= 10s

.PHONY: all generate check lint-idl breaking drift golden plugin test test-go test-race fuzz bench demo tools vet clean

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

tools: $(BUF) $(PGG) plugin

## generate: regenerate all code from the IDL, from a clean gen/go
# 1. protoc-gen-go alone (buf.gen.bootstrap.yaml, clean: true): fresh *.pb.go, which
#    compile on their own, so the plugin can link the current options (docs/idl.md);
# 2. build protoc-gen-sdskit-go against them;
# 3. every plugin (buf.gen.yaml, clean: true), then compile the result.
generate: $(BUF) $(PGG)
	$(BUF) generate --template buf.gen.bootstrap.yaml
	$(MAKE) --no-print-directory plugin
	$(BUF) generate
	$(GO) build ./gen/...

## check: drift, lint and compatibility checks of the IDL, generator golden tests
check: drift lint-idl breaking golden

## golden: the generators' own tests (golden files of a fixture IDL, validation errors)
golden:
	cd $(GENMOD) && $(GO) vet ./... && $(GO) test -count=1 ./...

drift: generate
	@git add -N gen >/dev/null 2>&1 || true
	@if ! git diff --exit-code --stat -- gen; then \
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
	@test -z "$$(gofmt -l core gen tools sdk-go 2>/dev/null)" || (gofmt -l core gen tools sdk-go; echo "gofmt needed" >&2; exit 1)

## test: every test of the repository
test: test-go

## test-go: vet, the Go tests, the race detector on the core, and a short fuzz smoke run
test-go: vet
	$(GO) test -count=1 $(GOPKGS)
	$(GO) test -count=1 -race ./core/...

## fuzz: run every fuzz target for FUZZTIME each (seed corpora in each package's testdata/fuzz)
FUZZPKGS := ./core/wire ./core/bloom ./core/hash
fuzz:
	@for p in $(FUZZPKGS); do \
		for t in $$($(GO) test -list 'Fuzz.*' $$p | grep ^Fuzz); do \
			echo "== $$p $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p || exit 1; done; done

## bench: the core benchmarks (results recorded in docs/benchmarks.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./core/...

## demo: the main job
# Until the cross-language demo lands (issue 8), the main job is the Go core's group chat:
# participants over a lossy, duplicating, delaying network, one restarted from its store.
demo:
	$(GO) run ./cmd/sdskit demo

clean:
	rm -rf $(BIN)
