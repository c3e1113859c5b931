package cgen_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdskit/sdskit/tools/generators/cgen"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

var update = flag.Bool("update", false, "rewrite the golden header")

const golden = "testdata/fixture.h"

// fixtureRequest returns the CodeGeneratorRequest of the fixture IDL (see gogen's golden test).
func fixtureRequest(t *testing.T) *pluginpb.CodeGeneratorRequest {
	t.Helper()
	data, err := os.ReadFile("../testdata/fixture.binpb")
	if err != nil {
		t.Fatal(err)
	}
	set := &descriptorpb.FileDescriptorSet{}
	if err := proto.Unmarshal(data, set); err != nil {
		t.Fatal(err)
	}
	req := &pluginpb.CodeGeneratorRequest{Parameter: proto.String("")}
	for _, f := range set.GetFile() {
		req.ProtoFile = append(req.ProtoFile, f)
		if strings.HasPrefix(f.GetName(), "fixture/") {
			req.FileToGenerate = append(req.FileToGenerate, f.GetName())
		}
	}
	return req
}

func generate(t *testing.T) map[string]string {
	t.Helper()
	gen, err := protogen.Options{}.New(fixtureRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := cgen.Generate(gen); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range gen.Response().GetFile() {
		out[f.GetName()] = f.GetContent()
	}
	return out
}

// TestGolden compares the header generated for the fixture IDL with the golden.
func TestGolden(t *testing.T) {
	files := generate(t)
	got, ok := files["fixture.h"]
	if !ok || len(files) != 1 {
		t.Fatalf("generated %v, want just fixture.h", files)
	}
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run `go test ./cgen -update`)", err)
	}
	if !bytes.Equal(want, []byte(got)) {
		t.Fatalf("the header differs from %s; if intended, run `cd tools/generators && go test ./cgen -update` and review the diff", golden)
	}
	for _, s := range []string{
		"#define FIXTURE_ABI_VERSION 1",
		"#define FIXTURE_COUNTER_SERVICE \"fixture.v1.Counter\"",
		"#define FIXTURE_COUNTER_CLEAR 7",
		"#define FIXTURE_STORE_COMPACT 20",
		"#define FIXTURE_CAP_STORE 0x1u",
		"#define FIXTURE_CAP_STORE_TRANSACTIONS 0x2u",
		"#define FIXTURE_CAP_STORE_MAINTENANCE 0x4u",
		"#define FIXTURE_ERROR_CODE_NOT_FOUND 6",
		"int32_t fixture_call(",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("the header lacks %q", s)
		}
	}
}

// TestHeaderCompiles compiles the golden header as C and C++ when a compiler is found.
func TestHeaderCompiles(t *testing.T) {
	for _, cc := range []string{"cc", "c++"} {
		path, err := exec.LookPath(cc)
		if err != nil {
			t.Logf("%s not found: skipped", cc)
			continue
		}
		dir := t.TempDir()
		src := filepath.Join(dir, "main.c")
		if cc == "c++" {
			src = filepath.Join(dir, "main.cc")
		}
		abs, _ := filepath.Abs("testdata")
		if err := os.WriteFile(src, []byte("#include \"fixture.h\"\nint main(void) { return FIXTURE_OK; }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(path, "-Wall", "-Werror", "-I"+abs, "-c", src, "-o", filepath.Join(dir, "main.o"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cc, err, out)
		}
	}
}
