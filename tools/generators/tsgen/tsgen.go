// Package tsgen is the TypeScript generator of sdskit: from the model of the IDL (package
// model, shared with the Go and Python generators) it writes a <file>_sdk.ts next to
// protoc-gen-es's <file>_pb.ts for every file that declares services, the error model or
// the event union:
//
//   - the runtime (in the file declaring Result): ABI_VERSION, IDL_HASH, the SdsError
//     class, the Result<T, SdsError> discriminated union with ok/err/fail/unwrap, the
//     CallFunc transport and the Result encoding helpers;
//   - per core service S: <S>ServiceName, <S>Method (method ids), and the typed class S
//     whose methods call the core over a CallFunc and return Promise<Result<…>>;
//   - per host service S: <S>ServiceName, <S>Method, the interface S (methods returning
//     Promise<Result<…>>), one interface per optional capability (<S><Capability>) with
//     its type guard implements<S><Capability>, and dispatch<S>, which turns a call by
//     method id with request bytes into Result bytes (at once for a synchronous answer);
//   - per host service following the batch convention: apply<S>Batch and
//     dispatch<S>Batch (a whole batch → the typed calls, inside the Transactions
//     capability when the implementation has it) and <op>Name;
//   - for the event union: <Event>Map (kind → message), <Event>Kind, <Event>Kinds,
//     <Event>KindOf, and <Event>s, a typed emitter whose throwing listeners never reach
//     the caller.
//
// Message types and schemas come from protoc-gen-es (v2), imported as namespaces, so no
// generated name can clash with a message name. cmd/protoc-gen-sdskit-ts is the protoc
// plugin around Generate.
package tsgen

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode"

	"github.com/sdskit/sdskit/tools/generators/model"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Name is the generator's name, as the do-not-edit header spells it.
const Name = "protoc-gen-sdskit-ts"

// Suffix is the suffix of every generated file.
const Suffix = "_sdk.ts"

// esSuffix is the suffix protoc-gen-es gives its files.
const esSuffix = "_pb"

// Options are the plugin parameters.
type Options struct {
	// ImportExtension is added to relative import paths: "js" (default, for Node ESM and
	// bundlers) or "none".
	ImportExtension string
}

// Set parses one plugin parameter (protogen.Options.ParamFunc).
func (o *Options) Set(name, value string) error {
	switch name {
	case "import_extension":
		switch value {
		case "js", "ts", "none", "":
			o.ImportExtension = value
			return nil
		}
		return fmt.Errorf("import_extension=%s: want js, ts or none", value)
	}
	return fmt.Errorf("unknown parameter %q (known: import_extension)", name)
}

// Generate builds the model of gen's files and writes the _sdk.ts files.
func Generate(gen *protogen.Plugin, opts Options) error {
	m, err := model.Build(gen)
	if err != nil {
		return err
	}
	if opts.ImportExtension == "" {
		opts.ImportExtension = "js"
	}
	var errs []string
	type pending struct {
		name string
		text string
	}
	var outs []pending
	for _, f := range m.Files {
		if len(f.Services) == 0 && !f.DeclaresErrors && !f.DeclaresEvents {
			continue
		}
		g := newFileGen(m, f, opts, &errs)
		if f.DeclaresErrors {
			g.runtime()
		}
		for _, s := range f.Services {
			switch s.Role {
			case model.RoleCore:
				g.coreService(s)
			case model.RoleHost:
				g.hostService(s)
				if s.Batch != nil {
					g.batch(s)
				}
			}
		}
		if f.DeclaresEvents {
			g.events()
		}
		outs = append(outs, pending{strings.TrimSuffix(f.Path, ".proto") + Suffix, g.render()})
	}
	if len(errs) > 0 {
		return errors.New("cannot generate TypeScript:\n  " + strings.Join(errs, "\n  "))
	}
	for _, o := range outs {
		out := gen.NewGeneratedFile(o.name, "")
		if _, err := out.Write([]byte(o.text)); err != nil {
			return err
		}
	}
	return nil
}

// fileGen renders one _sdk.ts file.
type fileGen struct {
	m    *model.Model
	f    *model.File
	em   *model.ErrorModel
	opts Options
	errs *[]string

	body       strings.Builder
	namespaces map[string]string          // es module path (relative) → namespace alias
	named      map[string]map[string]bool // module → imported name → type-only
	decls      map[string]bool            // identifiers this file declares
}

func newFileGen(m *model.Model, f *model.File, opts Options, errs *[]string) *fileGen {
	return &fileGen{
		m: m, f: f, em: m.Errors, opts: opts, errs: errs,
		namespaces: map[string]string{},
		named:      map[string]map[string]bool{},
		decls:      map[string]bool{},
	}
}

// p writes one line of the body (no arguments: an empty line).
func (g *fileGen) p(format string, args ...any) {
	if format != "" {
		fmt.Fprintf(&g.body, format, args...)
	}
	g.body.WriteByte('\n')
}

// decl registers an identifier declared by this file; a second declaration is an error
// (two IDL elements that map to the same TypeScript name).
func (g *fileGen) decl(name string) string {
	if g.decls[name] {
		*g.errs = append(*g.errs, fmt.Sprintf("%s: the generated TypeScript identifier %s is declared twice; rename one of the IDL elements", g.f.Path, name))
	}
	g.decls[name] = true
	return name
}

// relImport returns the import path of the generated file target (without extension,
// e.g. "sdskit/v1/state_pb") relative to this file.
func (g *fileGen) relImport(target string) string {
	from := path.Dir(g.f.Path)
	rel := relPath(from, target)
	if !strings.HasPrefix(rel, ".") {
		rel = "./" + rel
	}
	switch g.opts.ImportExtension {
	case "js":
		rel += ".js"
	case "ts":
		rel += ".ts"
	}
	return rel
}

// relPath is path.Rel for slash-separated relative paths.
func relPath(fromDir, target string) string {
	if fromDir == "." {
		return target
	}
	a := strings.Split(fromDir, "/")
	b := strings.Split(target, "/")
	i := 0
	for i < len(a) && i < len(b)-1 && a[i] == b[i] {
		i++
	}
	parts := slices.Repeat([]string{".."}, len(a)-i)
	return strings.Join(append(parts, b[i:]...), "/")
}

// ns returns the namespace alias under which the protoc-gen-es module of a proto file is
// imported (import * as api_pb from "./api_pb.js").
func (g *fileGen) ns(protoFile string) string {
	mod := g.relImport(strings.TrimSuffix(protoFile, ".proto") + esSuffix)
	if a, ok := g.namespaces[mod]; ok {
		return a
	}
	base := safeIdent(path.Base(strings.TrimSuffix(protoFile, ".proto")) + esSuffix)
	alias := base
	for n := 2; slices.Contains(mapValues(g.namespaces), alias); n++ {
		alias = fmt.Sprintf("%s%d", base, n)
	}
	g.namespaces[mod] = alias
	return alias
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// importNamed records a named import (typeOnly: `import type`).
func (g *fileGen) importNamed(module, name string, typeOnly bool) string {
	if g.named[module] == nil {
		g.named[module] = map[string]bool{}
	}
	if prev, ok := g.named[module][name]; ok {
		g.named[module][name] = prev && typeOnly
	} else {
		g.named[module][name] = typeOnly
	}
	return name
}

// pb returns the protobuf-es runtime name (create, fromBinary, ...).
func (g *fileGen) pb(name string) string { return g.importNamed("@bufbuild/protobuf", name, false) }

// pbType returns a protobuf-es runtime type name (MessageInitShape, ...).
func (g *fileGen) pbType(name string) string {
	return g.importNamed("@bufbuild/protobuf", name, true)
}

// rt returns a name of the generated runtime: local in the file declaring Result,
// imported from that file's _sdk module otherwise.
func (g *fileGen) rt(name string, typeOnly bool) string {
	if g.f.DeclaresErrors {
		return name
	}
	return g.importNamed(g.relImport(strings.TrimSuffix(g.em.File.Path, ".proto")+strings.TrimSuffix(Suffix, ".ts")), name, typeOnly)
}

// esName is protoc-gen-es's name of a message or enum: its name within the package,
// nested names joined by "_".
func esName(d protoreflect.Descriptor) string {
	name := string(d.FullName())
	if pkg := string(d.ParentFile().Package()); pkg != "" {
		name = strings.TrimPrefix(name, pkg+".")
	}
	return safeIdent(strings.ReplaceAll(name, ".", "_"))
}

// msgType returns the qualified TypeScript type of a message.
func (g *fileGen) msgType(m *model.Message) string {
	return g.ns(m.Proto.Desc.ParentFile().Path()) + "." + esName(m.Proto.Desc)
}

// schema returns the qualified schema constant of a message.
func (g *fileGen) schema(m *model.Message) string {
	return g.ns(m.Proto.Desc.ParentFile().Path()) + "." + esName(m.Proto.Desc) + "Schema"
}

// enumRef returns the qualified TypeScript enum of a protogen enum.
func (g *fileGen) enumRef(e *protogen.Enum) string {
	return g.ns(e.Desc.ParentFile().Path()) + "." + esName(e.Desc)
}

// codeRef returns the enum member of a required error code, e.g. errors_pb.ErrorCode.INTERNAL.
func (g *fileGen) codeRef(suffix string) string {
	return g.enumRef(g.em.CodeEnum) + "." + esEnumValue(g.em.CodeEnum, g.em.Codes[suffix])
}

// esEnumValue is protoc-gen-es's name of an enum value: the value without the enum's
// shared prefix (findEnumSharedPrefix in @bufbuild/protobuf: every value starts with it,
// case-insensitively, and no short name is empty or starts with a digit).
func esEnumValue(e *protogen.Enum, v *protogen.EnumValue) string {
	prefix := strings.ToLower(enumPrefix(string(e.Desc.Name())))
	for _, ev := range e.Values {
		n := string(ev.Desc.Name())
		if !strings.HasPrefix(strings.ToLower(n), prefix) || len(n) == len(prefix) || unicode.IsDigit(rune(n[len(prefix)])) {
			return string(v.Desc.Name())
		}
	}
	return string(v.Desc.Name())[len(prefix):]
}

// enumPrefix is camelToSnakeCase(name) + "_" as @bufbuild/protobuf computes it:
// ErrorCode → "error_code_".
func enumPrefix(enumName string) string {
	var sb strings.Builder
	for i, r := range enumName {
		if i > 0 && r >= 'A' && r <= 'Z' {
			sb.WriteByte('_')
		}
		sb.WriteRune(r)
	}
	return strings.ToLower(sb.String()) + "_"
}

// localName is protoc-gen-es's property name of a field (or oneof case): protoCamelCase
// of its proto name, with a "$" added to names that clash with Object members.
func localName(fieldName string) string {
	var sb strings.Builder
	capNext := false
	for _, r := range fieldName {
		switch {
		case r == '_':
			capNext = true
		case r >= '0' && r <= '9':
			sb.WriteRune(r)
			capNext = false
		case capNext:
			sb.WriteRune(unicode.ToUpper(r))
			capNext = false
		default:
			sb.WriteRune(r)
		}
	}
	name := sb.String()
	switch name {
	case "constructor", "toString", "toJSON", "valueOf":
		name += "$"
	}
	return name
}

// reserved are the identifiers protoc-gen-es escapes with a "$" suffix
// (safeIdentifier in @bufbuild/protoplugin).
var reserved = map[string]bool{
	"break": true, "case": true, "catch": true, "class": true, "const": true, "continue": true,
	"debugger": true, "default": true, "delete": true, "do": true, "else": true, "export": true,
	"extends": true, "false": true, "finally": true, "for": true, "function": true, "if": true,
	"import": true, "in": true, "instanceof": true, "new": true, "null": true, "return": true,
	"super": true, "switch": true, "this": true, "throw": true, "true": true, "try": true,
	"typeof": true, "var": true, "void": true, "while": true, "with": true, "yield": true,
	"enum": true, "implements": true, "interface": true, "let": true, "package": true,
	"private": true, "protected": true, "public": true, "static": true, "Object": true,
	"bigint": true, "number": true, "boolean": true, "string": true, "object": true,
	"globalThis": true, "Uint8Array": true, "Partial": true,
}

// safeIdent escapes a top-level identifier the way protoc-gen-es does (a "$" suffix).
func safeIdent(name string) string {
	if reserved[name] {
		return name + "$"
	}
	return name
}

// lowerFirst lowercases the first letter: EnsureChannel → ensureChannel.
func lowerFirst(s string) string {
	r := []rune(s)
	if len(r) > 0 {
		r[0] = unicode.ToLower(r[0])
	}
	return string(r)
}

// doc writes a JSDoc comment at the given indent (nothing for an empty text).
func (g *fileGen) doc(indent, text string) {
	text = strings.TrimSpace(text)
	if text == "" {
		return
	}
	text = strings.ReplaceAll(text, "*/", "*\\/")
	lines := strings.Split(text, "\n")
	if len(lines) == 1 && len(indent)+len(lines[0]) < 90 {
		g.p("%s/** %s */", indent, lines[0])
		return
	}
	g.p("%s/**", indent)
	for _, l := range lines {
		if l == "" {
			g.p("%s *", indent)
		} else {
			g.p("%s * %s", indent, l)
		}
	}
	g.p("%s */", indent)
}

// render assembles the header, the imports and the body.
func (g *fileGen) render() string {
	var sb strings.Builder
	sb.WriteString("// Code generated by " + Name + ". DO NOT EDIT.\n")
	sb.WriteString("// source: " + g.f.Path + "\n\n")
	sb.WriteString("/* eslint-disable */\n\n")

	// Named imports, the protobuf-es runtime first, then the generated runtime.
	mods := make([]string, 0, len(g.named))
	for mod := range g.named {
		mods = append(mods, mod)
	}
	slices.SortFunc(mods, func(a, b string) int {
		ra, rb := strings.HasPrefix(a, "."), strings.HasPrefix(b, ".")
		if ra != rb {
			if ra {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	for _, mod := range mods {
		var values, types []string
		for name, typeOnly := range g.named[mod] {
			if typeOnly {
				types = append(types, name)
			} else {
				values = append(values, name)
			}
		}
		slices.Sort(values)
		slices.Sort(types)
		if len(values) > 0 {
			fmt.Fprintf(&sb, "import { %s } from %q;\n", strings.Join(values, ", "), mod)
		}
		if len(types) > 0 {
			fmt.Fprintf(&sb, "import type { %s } from %q;\n", strings.Join(types, ", "), mod)
		}
	}
	nsMods := make([]string, 0, len(g.namespaces))
	for mod := range g.namespaces {
		nsMods = append(nsMods, mod)
	}
	slices.Sort(nsMods)
	for _, mod := range nsMods {
		fmt.Fprintf(&sb, "import * as %s from %q;\n", g.namespaces[mod], mod)
	}
	sb.WriteString("\n")
	sb.WriteString(strings.TrimRight(g.body.String(), "\n"))
	sb.WriteString("\n")
	return sb.String()
}
