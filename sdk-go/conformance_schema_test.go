package sdskit_test

// Validation of the conformance scenario files against idl/conformance/scenario.schema.json
// with a small JSON Schema (draft 2020-12) validator written here, so that no validator
// library joins the module's dependencies. It supports exactly the keywords the schema
// uses and rejects any other, so the schema cannot drift out of what is checked; the
// Python and TypeScript runners can validate the same files with an off-the-shelf
// validator.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// schemaKeywords are the keywords the validator implements (annotations included).
var schemaKeywords = []string{
	"$schema", "$id", "$defs", "$ref", "$comment", "title", "description",
	"type", "properties", "required", "additionalProperties", "propertyNames", "items",
	"enum", "const", "oneOf", "minimum", "minItems", "minLength", "pattern",
}

type schemaValidator struct {
	root    map[string]any
	regexps map[string]*regexp.Regexp
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}

func newSchemaValidator(t *testing.T, path string) *schemaValidator {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: the schema is not an object", path)
	}
	sv := &schemaValidator{root: root, regexps: map[string]*regexp.Regexp{}}
	if errs := sv.checkSchema(root, "#"); len(errs) > 0 {
		t.Fatalf("%s uses what the validator does not support:\n%s", path, strings.Join(errs, "\n"))
	}
	return sv
}

// checkSchema walks a schema and reports keywords the validator does not implement,
// dangling $refs and bad patterns.
func (sv *schemaValidator) checkSchema(s any, at string) []string {
	m, ok := s.(map[string]any)
	if !ok {
		if _, isBool := s.(bool); isBool {
			return nil
		}
		return []string{at + ": a schema must be an object or a boolean"}
	}
	var errs []string
	for _, k := range sortedKeys(m) {
		if !slices.Contains(schemaKeywords, k) {
			errs = append(errs, fmt.Sprintf("%s: unsupported keyword %q", at, k))
		}
	}
	for _, k := range []string{"$defs", "properties"} {
		if sub, ok := m[k].(map[string]any); ok {
			for _, name := range sortedKeys(sub) {
				errs = append(errs, sv.checkSchema(sub[name], at+"/"+k+"/"+name)...)
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties", "propertyNames"} {
		if sub, ok := m[k]; ok {
			errs = append(errs, sv.checkSchema(sub, at+"/"+k)...)
		}
	}
	if list, ok := m["oneOf"].([]any); ok {
		for i, sub := range list {
			errs = append(errs, sv.checkSchema(sub, fmt.Sprintf("%s/oneOf/%d", at, i))...)
		}
	}
	if ref, ok := m["$ref"].(string); ok {
		if _, err := sv.resolve(ref); err != nil {
			errs = append(errs, at+": "+err.Error())
		}
	}
	if p, ok := m["pattern"].(string); ok {
		if _, err := regexp.Compile(p); err != nil {
			errs = append(errs, fmt.Sprintf("%s: pattern: %v", at, err))
		}
	}
	return errs
}

func (sv *schemaValidator) resolve(ref string) (any, error) {
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		return nil, fmt.Errorf("$ref %q: only #/$defs/<name> references are supported", ref)
	}
	defs, _ := sv.root["$defs"].(map[string]any)
	s, ok := defs[name]
	if !ok {
		return nil, fmt.Errorf("$ref %q: no such definition", ref)
	}
	return s, nil
}

func jsonType(x any) string {
	switch v := x.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		if r, ok := new(big.Rat).SetString(v.String()); ok && r.IsInt() {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("%T", x)
}

func jsonEqual(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return bytes.Equal(ab, bb)
}

// validate returns every violation of schema s by instance x at path.
func (sv *schemaValidator) validate(s any, x any, path string) []string {
	if b, ok := s.(bool); ok {
		if b {
			return nil
		}
		return []string{path + ": not allowed"}
	}
	m := s.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		target, err := sv.resolve(ref)
		if err != nil {
			return []string{path + ": " + err.Error()}
		}
		if errs := sv.validate(target, x, path); len(errs) > 0 {
			return errs
		}
	}
	var errs []string
	if t, ok := m["type"].(string); ok {
		got := jsonType(x)
		if got != t && !(t == "number" && got == "integer") {
			return []string{fmt.Sprintf("%s: %s, want %s", path, got, t)}
		}
	}
	if c, ok := m["const"]; ok && !jsonEqual(c, x) {
		return []string{fmt.Sprintf("%s: %s, want %s", path, compact(x), compact(c))}
	}
	if e, ok := m["enum"].([]any); ok && !slices.ContainsFunc(e, func(v any) bool { return jsonEqual(v, x) }) {
		errs = append(errs, fmt.Sprintf("%s: %s is not one of %s", path, compact(x), compact(e)))
	}
	if min, ok := m["minimum"].(json.Number); ok {
		if n, isNum := x.(json.Number); isNum {
			a, _ := new(big.Rat).SetString(n.String())
			b, _ := new(big.Rat).SetString(min.String())
			if a.Cmp(b) < 0 {
				errs = append(errs, fmt.Sprintf("%s: %s is below the minimum %s", path, n, min))
			}
		}
	}
	if str, isStr := x.(string); isStr {
		if n, ok := m["minLength"].(json.Number); ok {
			if want, _ := n.Int64(); int64(len([]rune(str))) < want {
				errs = append(errs, fmt.Sprintf("%s: shorter than %d characters", path, want))
			}
		}
		if p, ok := m["pattern"].(string); ok {
			re := sv.regexps[p]
			if re == nil {
				re = regexp.MustCompile(p)
				sv.regexps[p] = re
			}
			if !re.MatchString(str) {
				errs = append(errs, fmt.Sprintf("%s: %q does not match %s", path, str, p))
			}
		}
	}
	if arr, isArr := x.([]any); isArr {
		if n, ok := m["minItems"].(json.Number); ok {
			if want, _ := n.Int64(); int64(len(arr)) < want {
				errs = append(errs, fmt.Sprintf("%s: fewer than %d items", path, want))
			}
		}
		if items, ok := m["items"]; ok {
			for i, it := range arr {
				errs = append(errs, sv.validate(items, it, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	if obj, isObj := x.(map[string]any); isObj {
		props, _ := m["properties"].(map[string]any)
		if req, ok := m["required"].([]any); ok {
			for _, r := range req {
				if _, present := obj[r.(string)]; !present {
					errs = append(errs, fmt.Sprintf("%s: missing required property %q", path, r))
				}
			}
		}
		for _, k := range sortedKeys(obj) {
			if pn, ok := m["propertyNames"]; ok {
				errs = append(errs, sv.validate(pn, k, path+" (property name)")...)
			}
			if ps, ok := props[k]; ok {
				errs = append(errs, sv.validate(ps, obj[k], path+"."+k)...)
			} else if ap, ok := m["additionalProperties"]; ok {
				if b, isBool := ap.(bool); isBool && !b {
					errs = append(errs, fmt.Sprintf("%s: unknown property %q", path, k))
				} else {
					errs = append(errs, sv.validate(ap, obj[k], path+"."+k)...)
				}
			}
		}
	}
	if list, ok := m["oneOf"].([]any); ok {
		var best []string
		matched := 0
		for _, branch := range list {
			be := sv.validate(branch, x, path)
			if len(be) == 0 {
				matched++
			} else if best == nil || len(be) < len(best) {
				best = be
			}
		}
		switch {
		case matched == 0:
			errs = append(errs, best...)
		case matched > 1:
			errs = append(errs, fmt.Sprintf("%s: matches %d branches of oneOf, want exactly 1", path, matched))
		}
	}
	return errs
}

func compact(x any) string {
	b, _ := json.Marshal(x)
	return string(b)
}

// TestConformanceScenariosMatchTheSchema validates every scenario file against the
// schema (TestConformance checks the rest: that each file's name equals its "name", and
// saved names exist when used).
func TestConformanceScenariosMatchTheSchema(t *testing.T) {
	sv := newSchemaValidator(t, filepath.Join(conformanceDir, "scenario.schema.json"))
	files, err := filepath.Glob(filepath.Join(conformanceDir, "scenarios", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 35 {
		t.Fatalf("%d scenario files, want at least 35", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		x, err := decodeJSON(data)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if errs := sv.validate(sv.root, x, "$"); len(errs) > 0 {
			sort.Strings(errs)
			t.Errorf("%s does not match the schema:\n  %s", filepath.Base(f), strings.Join(errs, "\n  "))
		}
	}
}

// TestConformanceSchemaValidatorRejects makes sure the validator is not vacuous.
func TestConformanceSchemaValidatorRejects(t *testing.T) {
	sv := newSchemaValidator(t, filepath.Join(conformanceDir, "scenario.schema.json"))
	for _, bad := range []string{
		`{"name": "x", "description": "d", "steps": []}`,
		`{"name": "x", "description": "d", "steps": [{"op": "wrap", "participant": "a"}]}`,
		`{"name": "x", "description": "d", "steps": [{"op": "teleport", "participant": "a"}]}`,
		`{"name": "x", "description": "d", "steps": [{"op": "advance_clock", "ms": -1}]}`,
		`{"name": "x", "description": "d", "steps": [{"op": "advance_clock", "ms": 1.5}]}`,
		`{"name": "x", "description": "d", "steps": [{"op": "create", "participant": "a", "persistence": "disk"}]}`,
		`{"name": "x", "description": "d", "steps": [{"op": "create", "participant": "a", "colour": "red"}]}`,
		`{"name": "x", "description": "d", "steps": [{"op": "fail_persistence", "participant": "a", "operation": "Explode"}]}`,
		`{"name": "x", "description": "d", "steps": [{"op": "run_sweeps", "participant": "a", "expect": {"error": "OOPS"}}]}`,
		`{"name": "x", "description": "d", "steps": [{"op": "run_sweeps", "participant": "a", "expect": {"events": [{"type": "message_ready", "colour": 1}]}}]}`,
		`{"name": "x", "description": "d", "steps": [{"op": "run_sweeps", "participant": "a", "expect": {"persistence_calls": {"Explode": 1}}}]}`,
		`{"name": "x", "description": "d", "steps": [{"op": "check", "expect": {"state": {"lamport": {"about": 3}}}}]}`,
		`{"name": "Bad Name", "description": "d", "steps": [{"op": "advance_clock", "ms": 1}]}`,
	} {
		x, err := decodeJSON([]byte(bad))
		if err != nil {
			t.Fatal(err)
		}
		if errs := sv.validate(sv.root, x, "$"); len(errs) == 0 {
			t.Errorf("the schema accepts %s", bad)
		}
	}
	good := `{"name": "x", "description": "d", "steps": [{"op": "advance_clock", "ms": 1}, {"op": "check", "expect": {"state": {"lamport": {"gt": "l1", "le": 5}}}}]}`
	x, _ := decodeJSON([]byte(good))
	if errs := sv.validate(sv.root, x, "$"); len(errs) > 0 {
		t.Errorf("the schema rejects %s: %v", good, errs)
	}
}

// TestConformanceSchemaMatchesTheRunner checks that the schema's objects and the runner's
// strict structs name the same fields, so that a field cannot be added to one and not the
// other.
func TestConformanceSchemaMatchesTheRunner(t *testing.T) {
	sv := newSchemaValidator(t, filepath.Join(conformanceDir, "scenario.schema.json"))
	defs := sv.root["$defs"].(map[string]any)
	props := func(s any) []string {
		p, _ := s.(map[string]any)["properties"].(map[string]any)
		return sortedKeys(p)
	}
	sub := func(def, prop string) any {
		return defs[def].(map[string]any)["properties"].(map[string]any)[prop].(map[string]any)["items"]
	}
	var stepProps []string
	for _, name := range sortedKeys(defs) {
		if strings.HasPrefix(name, "step_") {
			for _, p := range props(defs[name]) {
				if !slices.Contains(stepProps, p) {
					stepProps = append(stepProps, p)
				}
			}
		}
	}
	sort.Strings(stepProps)
	entryObject := defs["entry_spec"].(map[string]any)["oneOf"].([]any)[1]
	for _, c := range []struct {
		what   string
		schema []string
		goType any
	}{
		{"scenario", props(sv.root), scenario{}},
		{"step_*", stepProps, step{}},
		{"message_spec", props(defs["message_spec"]), messageSpec{}},
		{"entry_spec", props(entryObject), entrySpec{}},
		{"expect", props(defs["expect"]), expect{}},
		{"result_match", props(defs["result_match"]), resultMatch{}},
		{"entry_match", props(defs["entry_match"]), entryMatch{}},
		{"message_match", props(defs["message_match"]), messageMatch{}},
		{"event_match", props(defs["event_match"]), eventMatch{}},
		{"state_match", props(defs["state_match"]), stateMatch{}},
		{"state_match.log_entries", props(sub("state_match", "log_entries")), logEntryMatch{}},
		{"state_match.outgoing_entries", props(sub("state_match", "outgoing_entries")), outgoingMatch{}},
		{"state_match.incoming_entries", props(sub("state_match", "incoming_entries")), incomingMatch{}},
		{"repair_match", props(defs["repair_match"]), repairMatch{}},
	} {
		var tags []string
		rt := reflect.TypeOf(c.goType)
		for i := range rt.NumField() {
			if tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ","); tag != "" && tag != "-" {
				tags = append(tags, tag)
			}
		}
		sort.Strings(tags)
		if !slices.Equal(tags, c.schema) {
			t.Errorf("%s: the schema names %q, the runner %q", c.what, c.schema, tags)
		}
	}
	for _, name := range sortedKeys(defs) {
		if op, ok := strings.CutPrefix(name, "step_"); ok {
			if got := defs[name].(map[string]any)["properties"].(map[string]any)["op"].(map[string]any)["const"]; got != op {
				t.Errorf("%s: op const %v, want %q", name, got, op)
			}
		}
	}
}
