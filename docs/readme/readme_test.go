//go:build readme

// Package readme executes every code block of the repository's README.md, so that the
// snippets newcomers copy keep working. It runs under `make test-readme` (part of `make
// test`), which first builds what the snippets need: the C library and the Python
// virtualenv for Python blocks, the TypeScript SDK for TypeScript blocks.
//
// Each fenced block must be preceded by an HTML comment that says how it is checked:
//
//	<!-- snippet: run, expect "text" -->   run it (go, python, ts) and require "text" in its output
//	<!-- snippet: make -->                  sh block of `make <target>` lines: each target must exist
//	                                        and `make -n` must accept it
//	<!-- snippet: compile -->              go block: a fragment type-checked inside a function
//	                                        body of the package given by `// package: path` lines
//
// A block without such a comment fails the test: nothing in the README goes unchecked.
package readme

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// block is one fenced code block of the README and the directive before it.
type block struct {
	line      int
	lang      string
	directive string
	body      string
}

var directiveRE = regexp.MustCompile(`^<!--\s*snippet:\s*(.*?)\s*-->$`)

func parse(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out       []block
		directive string
		cur       *block
		n         int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur != nil {
			if trimmed == "```" {
				out = append(out, *cur)
				cur = nil
				continue
			}
			cur.body += line + "\n"
			continue
		}
		if m := directiveRE.FindStringSubmatch(trimmed); m != nil {
			directive = m[1]
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			cur = &block{line: n, lang: strings.TrimPrefix(trimmed, "```"), directive: directive}
			directive = ""
			continue
		}
		if trimmed != "" {
			directive = ""
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("README.md:%d: unterminated code block", cur.line)
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", root, err)
	}
	return root
}

func TestReadmeSnippets(t *testing.T) {
	root := repoRoot(t)
	blocks := parse(t, filepath.Join(root, "README.md"))
	if len(blocks) == 0 {
		t.Fatal("README.md has no code blocks: the parser is broken")
	}
	// A leading underscore keeps the snippets out of ./... patterns (go vet, go test).
	work := filepath.Join(root, "build", "_readme")
	if err := os.RemoveAll(work); err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		name := fmt.Sprintf("line%d_%s", b.line, b.lang)
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(work, fmt.Sprintf("b%02d", i))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			switch {
			case strings.HasPrefix(b.directive, "run"):
				runBlock(t, root, dir, b)
			case b.directive == "make":
				checkMake(t, root, b)
			case b.directive == "compile":
				compileFragment(t, root, dir, b)
			case b.directive == "":
				t.Fatalf("README.md:%d: a %q block without a <!-- snippet: ... --> directive", b.line, b.lang)
			default:
				t.Fatalf("README.md:%d: unknown snippet directive %q", b.line, b.directive)
			}
		})
	}
}

var expectRE = regexp.MustCompile(`expect\s+"([^"]*)"`)

func runBlock(t *testing.T, root, dir string, b block) {
	m := expectRE.FindStringSubmatch(b.directive)
	if m == nil {
		t.Fatalf("README.md:%d: a run directive needs expect \"...\"", b.line)
	}
	var cmd *exec.Cmd
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	switch b.lang {
	case "go":
		// Inside the module tree, so the snippet's imports resolve to this checkout.
		write(t, filepath.Join(dir, "main.go"), b.body)
		cmd = exec.CommandContext(ctx, "go", "run", "./"+rel(t, root, dir))
	case "python":
		write(t, filepath.Join(dir, "snippet.py"), b.body)
		cmd = exec.CommandContext(ctx, filepath.Join(root, "build", "venv", "bin", "python"), filepath.Join(dir, "snippet.py"))
	case "ts":
		cmd = tsCommand(t, ctx, root, b)
	default:
		t.Fatalf("README.md:%d: cannot run a %q block", b.line, b.lang)
	}
	cmd.Dir = dir
	if b.lang == "go" {
		cmd.Dir = root
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README.md:%d: %s snippet failed: %v\n%s", b.line, b.lang, err, out)
	}
	if !bytes.Contains(out, []byte(m[1])) {
		t.Fatalf("README.md:%d: output lacks %q:\n%s", b.line, m[1], out)
	}
	t.Logf("README.md:%d ran:\n%s", b.line, out)
}

// tsCommand compiles a TypeScript snippet with the SDK's own compiler and settings. The
// snippet lives inside sdk-ts, so `import ... from "@sdskit/sdk"` resolves to the package
// itself (Node's self-reference through package.json "exports").
func tsCommand(t *testing.T, ctx context.Context, root string, b block) *exec.Cmd {
	t.Helper()
	dir := filepath.Join(root, "sdk-ts", "build", "_readme", fmt.Sprintf("l%d", b.line))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "snippet.ts"), b.body)
	write(t, filepath.Join(dir, "tsconfig.json"), `{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
    "strict": true, "skipLibCheck": true, "rootDir": ".", "outDir": "out", "types": ["node"]
  },
  "files": ["snippet.ts"]
}
`)
	tsc := exec.CommandContext(ctx, filepath.Join(root, "sdk-ts", "node_modules", ".bin", "tsc"), "-p", dir)
	if out, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("README.md:%d: the TypeScript snippet does not compile: %v\n%s", b.line, err, out)
	}
	return exec.CommandContext(ctx, "node", filepath.Join(dir, "out", "snippet.js"))
}

var packageRE = regexp.MustCompile(`(?m)^// package: (\S+)$`)

// compileFragment type-checks a Go fragment (not a whole program) by wrapping it in a
// function of a throwaway package that imports what its `// package:` lines name.
func compileFragment(t *testing.T, root, dir string, b block) {
	if b.lang != "go" {
		t.Fatalf("README.md:%d: compile applies to go blocks only", b.line)
	}
	var imports strings.Builder
	for _, m := range packageRE.FindAllStringSubmatch(b.body, -1) {
		fmt.Fprintf(&imports, "\t%s\n", m[1])
	}
	src := fmt.Sprintf("package snippet\n\nimport (\n%s)\n\nfunc fragment(ctx context.Context, received []byte) error {\n%s\treturn nil\n}\n", imports.String(), b.body)
	write(t, filepath.Join(dir, "snippet.go"), src)
	cmd := exec.Command("go", "vet", "./"+rel(t, root, dir))
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README.md:%d: the Go fragment does not compile: %v\n%s\n%s", b.line, err, out, src)
	}
}

var makeLineRE = regexp.MustCompile(`^make\s+([a-z0-9-]+)`)

func checkMake(t *testing.T, root string, b block) {
	targets := 0
	for _, line := range strings.Split(b.body, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := makeLineRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("README.md:%d: %q is not a make command", b.line, line)
		}
		cmd := exec.Command("make", "-n", m[1])
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("README.md:%d: make %s is not a working target: %v\n%s", b.line, m[1], err, out)
		}
		targets++
	}
	if targets == 0 {
		t.Fatalf("README.md:%d: a make block without make commands", b.line)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func rel(t *testing.T, root, dir string) string {
	t.Helper()
	r, err := filepath.Rel(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(r)
}
