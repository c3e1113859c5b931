package gogen_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBreakingChangeIsCaught proves the compatibility check of `make check` on a scratch
// copy of the real IDL: changing a field's type must make `buf breaking` against the
// committed baseline (idl/baseline.binpb) fail with a message naming the field. Skipped
// without buf.
func TestBreakingChangeIsCaught(t *testing.T) {
	buf := findBuf()
	if buf == "" {
		t.Skip("buf not found (run `make tools`, or set BUF)")
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../../idl")); err != nil {
		t.Fatal(err)
	}
	run := func() (string, error) {
		cmd := exec.Command(buf, "breaking", "--against", "baseline.binpb")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(); err != nil {
		t.Fatalf("the committed IDL already breaks the baseline:\n%s", out)
	}

	state := filepath.Join(dir, "sdskit/v1/state.proto")
	src, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	const from = "message SaveLamportRequest {\n  // The channel id.\n  string channel_id = 1;\n  // The new clock value.\n  uint64 lamport_timestamp = 2;"
	if !strings.Contains(string(src), from) {
		t.Fatal("SaveLamportRequest changed; update this test's edit")
	}
	changed := strings.Replace(string(src), from, strings.Replace(from, "uint64", "uint32", 1), 1)
	if err := os.WriteFile(state, []byte(changed), fs.FileMode(0o644)); err != nil {
		t.Fatal(err)
	}
	out, err := run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 100 {
		t.Fatalf("buf breaking: err %v (want exit status 100)\n%s", err, out)
	}
	want := `sdskit/v1/state.proto:98:3:Field "2" with name "lamport_timestamp" on message "SaveLamportRequest" changed type from "uint64" to "uint32".`
	if !strings.Contains(out, `Field "2" with name "lamport_timestamp" on message "SaveLamportRequest" changed type from "uint64" to "uint32".`) {
		t.Fatalf("buf breaking says:\n%s\nwant a line like:\n%s", out, want)
	}
	t.Logf("buf breaking (exit 100):\n%s", out)
}
