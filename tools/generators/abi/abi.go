// Package abi holds what the generators of the C ABI's users share beyond package
// model: the C naming prefix and the capability bits a host passes to create. The C
// header generator (cgen) and the Python generator (pygen) both derive them from the
// model, so a header and an SDK generated from one IDL always agree.
package abi

import (
	"strings"
	"unicode"

	"github.com/sdskit/sdskit/tools/generators/model"
)

// Capability is one bit of the capabilities word of the C ABI's create: a host service
// the host implements, or one optional capability (optional_group) of such a service.
type Capability struct {
	// Name is the service name, or service name + capability name for a group, e.g.
	// "Persistence", "PersistenceTransactions".
	Name string
	// Service is the host service.
	Service *model.Service
	// Group is the optional capability (nil for the service bit itself).
	Group *model.Group
	// Bit is the capability's bit: 1 << its index.
	Bit uint32
}

// Capabilities returns the capability bits of the model's host services: for each host
// service in IDL declaration order, its own bit, then one bit per optional capability in
// order of first appearance. The IDL hash changes with any declaration, so an SDK and a
// library built from different IDLs refuse each other before bits could disagree.
func Capabilities(m *model.Model) []Capability {
	var out []Capability
	add := func(c Capability) {
		c.Bit = 1 << uint(len(out))
		out = append(out, c)
	}
	for _, f := range m.Files {
		for _, s := range f.Services {
			if s.Role != model.RoleHost {
				continue
			}
			add(Capability{Name: s.Name, Service: s})
			for _, g := range s.Groups {
				add(Capability{Name: s.Name + g.Name, Service: s, Group: g})
			}
		}
	}
	return out
}

// Prefix returns the C prefix of a model: the first component of the services' (or the
// error model's) proto package, e.g. "sdskit" for sdskit.v1.
func Prefix(m *model.Model) string {
	pkg := ""
	if m.Errors != nil {
		pkg = m.Errors.File.Package
	}
	for _, f := range m.Files {
		if pkg != "" {
			break
		}
		if len(f.Services) > 0 {
			pkg = f.Package
		}
	}
	if pkg == "" && len(m.Files) > 0 {
		pkg = m.Files[0].Package
	}
	first, _, _ := strings.Cut(pkg, ".")
	return strings.ToLower(first)
}

// UpperSnake turns an UpperCamelCase name into UPPER_SNAKE: RetrievalHintProvider →
// RETRIEVAL_HINT_PROVIDER, GetRetrievalHint → GET_RETRIEVAL_HINT, IDLHash → IDL_HASH.
func UpperSnake(s string) string {
	return strings.ToUpper(Snake(s))
}

// Snake turns an UpperCamelCase name into lower snake_case: SaveLamport → save_lamport,
// LoadAllForChannel → load_all_for_channel.
func Snake(s string) string {
	r := []rune(s)
	var sb strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prevLower := unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1])
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if prevLower || (unicode.IsUpper(r[i-1]) && nextLower) {
				sb.WriteByte('_')
			}
		}
		sb.WriteRune(unicode.ToLower(c))
	}
	return sb.String()
}
