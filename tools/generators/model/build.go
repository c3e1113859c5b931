package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// Conventional names the model recognises (documented in docs/idl.md).
const (
	// ResultName is the name of the Result message.
	ResultName = "Result"
	// ErrorName is the name of the Error message.
	ErrorName = "Error"
	// EmptyName is the name of the message whose methods return only an error.
	EmptyName = "Empty"
	// EventName is the name of the event union.
	EventName = "Event"
	// BatchSuffix names the batch message of a host service: <Service>Batch, whose one
	// repeated message field holds the ops (messages with exactly one oneof).
	BatchSuffix = "Batch"
	// TransactionsGroup is the capability the batch adapter wraps batches in.
	TransactionsGroup = "Transactions"
)

// groupNameRE is what an optional_group must look like: it becomes part of a type name
// in every language.
var groupNameRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

// errorList collects validation errors.
type errorList []string

func (l *errorList) add(pos, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if pos != "" {
		msg = pos + ": " + msg
	}
	*l = append(*l, msg)
}

func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return errors.New("invalid IDL:\n  " + strings.Join(l, "\n  "))
}

// Build builds and validates the model of the plugin's files to generate. The error
// lists every problem found, each prefixed with its file:line:column.
func Build(gen *protogen.Plugin) (*Model, error) {
	b := &builder{gen: gen, messages: map[protoreflect.FullName]*Message{}}
	m := &Model{ABIVersion: ABIVersion}
	hash, err := IDLHash(gen.Request)
	if err != nil {
		return nil, err
	}
	m.IDLHash = hash

	var servicePackages []string
	for _, f := range gen.Files {
		if !f.Generate {
			continue
		}
		mf := &File{Path: f.Desc.Path(), Package: string(f.Desc.Package()), Proto: f}
		m.Files = append(m.Files, mf)
		for _, s := range f.Services {
			if svc := b.service(mf, s); svc != nil {
				mf.Services = append(mf.Services, svc)
			}
		}
		if len(f.Services) > 0 && !slices.Contains(servicePackages, mf.Package) {
			servicePackages = append(servicePackages, mf.Package)
		}
		for _, msg := range f.Messages {
			switch msg.Desc.Name() {
			case ResultName:
				if m.Errors != nil {
					b.errs.add(pos(msg.Desc), "a second %s message (the first is in %s); one error model per generation", ResultName, m.Errors.File.Path)
					continue
				}
				m.Errors = b.errorModel(mf, msg)
				if m.Errors != nil {
					mf.DeclaresErrors = true
				}
			case EventName:
				if m.Events != nil {
					b.errs.add(pos(msg.Desc), "a second %s message; one event union per generation", EventName)
					continue
				}
				m.Events = b.events(msg)
				if m.Events != nil {
					mf.DeclaresEvents = true
				}
			}
		}
	}
	if len(servicePackages) > 1 {
		b.errs.add("", "services are declared in several proto packages (%s); generate one package at a time", strings.Join(servicePackages, ", "))
	}
	if len(servicePackages) > 0 && m.Errors == nil && len(b.errs) == 0 {
		b.errs.add("", "the IDL declares services but no %s message: declare `message %s { oneof result { bytes value = 1; %s error = 2; } }` in package %s",
			ResultName, ResultName, ErrorName, servicePackages[0])
	}
	if m.Errors != nil && len(servicePackages) == 1 && m.Errors.File.Package != servicePackages[0] {
		b.errs.add(pos(m.Errors.Result.Proto.Desc), "%s must be declared in the services' package %s", ResultName, servicePackages[0])
	}
	for _, f := range m.Files {
		for _, s := range f.Services {
			if s.Role == RoleHost {
				s.Batch = b.batch(s)
			}
		}
	}
	if err := b.errs.err(); err != nil {
		return nil, err
	}
	return m, nil
}

// builder holds the state of one Build.
type builder struct {
	gen      *protogen.Plugin
	errs     errorList
	messages map[protoreflect.FullName]*Message
}

// message returns the model message of a protogen message (one instance per type).
func (b *builder) message(msg *protogen.Message) *Message {
	if m, ok := b.messages[msg.Desc.FullName()]; ok {
		return m
	}
	name := string(msg.Desc.FullName())
	if pkg := string(msg.Desc.ParentFile().Package()); pkg != "" {
		name = strings.TrimPrefix(name, pkg+".")
	}
	m := &Message{Name: name, FullName: string(msg.Desc.FullName()), Comment: Comment(msg.Comments.Leading), Proto: msg}
	b.messages[msg.Desc.FullName()] = m
	return m
}

// service builds and validates one service.
func (b *builder) service(f *File, s *protogen.Service) *Service {
	svc := &Service{
		Name:     string(s.Desc.Name()),
		FullName: string(s.Desc.FullName()),
		Comment:  Comment(s.Comments.Leading),
		File:     f,
		Proto:    s,
	}
	at := pos(s.Desc)
	role := proto.GetExtension(s.Desc.Options(), sdskitv1.E_Role).(sdskitv1.ServiceRole)
	switch role {
	case sdskitv1.ServiceRole_SERVICE_ROLE_CORE:
		svc.Role = RoleCore
	case sdskitv1.ServiceRole_SERVICE_ROLE_HOST:
		svc.Role = RoleHost
	case sdskitv1.ServiceRole_SERVICE_ROLE_UNSPECIFIED:
		b.errs.add(at, "service %s has no role: add `option (sdskit.v1.role) = SERVICE_ROLE_CORE;` (implemented by the Go core) or SERVICE_ROLE_HOST (implemented by the application)", svc.Name)
	default:
		b.errs.add(at, "service %s has an unknown role %d", svc.Name, role)
	}

	byID := map[uint32]string{}
	for _, pm := range s.Methods {
		mat := pos(pm.Desc)
		opts := pm.Desc.Options()
		m := &Method{
			Name:     string(pm.Desc.Name()),
			ID:       proto.GetExtension(opts, sdskitv1.E_MethodId).(uint32),
			Input:    b.message(pm.Input),
			Output:   b.message(pm.Output),
			Optional: proto.GetExtension(opts, sdskitv1.E_OptionalMethod).(bool),
			Group:    proto.GetExtension(opts, sdskitv1.E_OptionalGroup).(string),
			Comment:  Comment(pm.Comments.Leading),
			Service:  svc,
			Proto:    pm,
		}
		m.ReturnsEmpty = isEmpty(pm.Output)
		svc.Methods = append(svc.Methods, m)
		if pm.Desc.IsStreamingClient() || pm.Desc.IsStreamingServer() {
			b.errs.add(mat, "%s.%s is a streaming rpc; the ABI has request/response calls only", svc.Name, m.Name)
		}
		switch prev, dup := byID[m.ID]; {
		case m.ID == 0:
			b.errs.add(mat, "%s.%s has no method id: add `option (sdskit.v1.method_id) = N;` with N unique within the service and never reused", svc.Name, m.Name)
		case dup:
			b.errs.add(mat, "%s.%s: method id %d is already used by %s.%s (method ids are unique within a service and never change)", svc.Name, m.Name, m.ID, svc.Name, prev)
		default:
			byID[m.ID] = m.Name
		}
		switch {
		case m.Optional && svc.Role == RoleCore:
			b.errs.add(mat, "%s.%s is optional, but %s is a core service: the core implements every method", svc.Name, m.Name, svc.Name)
		case m.Optional && m.Group == "":
			b.errs.add(mat, "%s.%s is optional but names no capability: add `option (sdskit.v1.optional_group) = \"Name\";` (e.g. \"Transactions\")", svc.Name, m.Name)
		case !m.Optional && m.Group != "":
			b.errs.add(mat, "%s.%s has optional_group %q but is not optional: add `option (sdskit.v1.optional_method) = true;`", svc.Name, m.Name, m.Group)
		case m.Group != "" && !groupNameRE.MatchString(m.Group):
			b.errs.add(mat, "%s.%s: optional_group %q must be an UpperCamelCase name", svc.Name, m.Name, m.Group)
		}
		if !m.Optional {
			svc.Required = append(svc.Required, m)
			continue
		}
		if m.Group == "" {
			continue
		}
		i := slices.IndexFunc(svc.Groups, func(g *Group) bool { return g.Name == m.Group })
		if i < 0 {
			svc.Groups = append(svc.Groups, &Group{Name: m.Group})
			i = len(svc.Groups) - 1
		}
		svc.Groups[i].Methods = append(svc.Groups[i].Methods, m)
	}
	return svc
}

// errorModel builds the error model from the Result message.
func (b *builder) errorModel(f *File, result *protogen.Message) *ErrorModel {
	at := pos(result.Desc)
	em := &ErrorModel{Result: b.message(result), File: f, Codes: map[string]*protogen.EnumValue{}}
	shape := fmt.Sprintf("%s must be `message %s { oneof result { bytes value = 1; %s error = 2; } }`", ResultName, ResultName, ErrorName)
	if len(result.Oneofs) != 1 || len(result.Fields) != 2 || result.Oneofs[0].Desc.IsSynthetic() {
		b.errs.add(at, "%s", shape)
		return nil
	}
	em.ResultOneof = result.Oneofs[0]
	for _, fd := range result.Fields {
		switch {
		case fd.Oneof != em.ResultOneof:
			b.errs.add(pos(fd.Desc), "%s", shape)
			return nil
		case fd.Desc.Kind() == protoreflect.BytesKind:
			em.Value = field(fd)
		case fd.Message != nil && fd.Message.Desc.Name() == ErrorName:
			em.ErrorField = field(fd)
			em.Error = b.message(fd.Message)
		}
	}
	if em.Value == nil || em.ErrorField == nil {
		b.errs.add(at, "%s", shape)
		return nil
	}
	errMsg := em.Error.Proto
	errShape := fmt.Sprintf("%s must have the fields `ErrorCode code`, `string message` and `string op`", ErrorName)
	for _, fd := range errMsg.Fields {
		switch {
		case fd.Desc.Name() == "code" && fd.Enum != nil && fd.Desc.Cardinality() != protoreflect.Repeated:
			em.Code, em.CodeEnum = field(fd), fd.Enum
		case fd.Desc.Name() == "message" && isString(fd):
			em.Text = field(fd)
		case fd.Desc.Name() == "op" && isString(fd):
			em.Op = field(fd)
		}
	}
	if em.Code == nil || em.Text == nil || em.Op == nil {
		b.errs.add(pos(errMsg.Desc), "%s", errShape)
		return nil
	}
	em.CodePrefix = enumPrefix(em.CodeEnum)
	for _, suffix := range RequiredCodes {
		for _, v := range em.CodeEnum.Values {
			if string(v.Desc.Name()) == em.CodePrefix+suffix {
				em.Codes[suffix] = v
			}
		}
		if em.Codes[suffix] == nil {
			b.errs.add(pos(em.CodeEnum.Desc), "%s has no value %s%s, which the generated runtime reports", em.CodeEnum.Desc.Name(), em.CodePrefix, suffix)
		}
	}
	if len(em.Codes) != len(RequiredCodes) {
		return nil
	}
	return em
}

// events builds the event union.
func (b *builder) events(msg *protogen.Message) *Events {
	at := pos(msg.Desc)
	if len(msg.Oneofs) != 1 || msg.Oneofs[0].Desc.IsSynthetic() || len(msg.Oneofs[0].Fields) != len(msg.Fields) {
		b.errs.add(at, "%s must hold exactly one oneof and nothing else (one case per event kind)", EventName)
		return nil
	}
	ev := &Events{Message: b.message(msg), Oneof: string(msg.Oneofs[0].Desc.Name()), OneofProto: msg.Oneofs[0]}
	for _, fd := range msg.Oneofs[0].Fields {
		if fd.Message == nil {
			b.errs.add(pos(fd.Desc), "event %s must be a message (one message per event kind)", fd.Desc.Name())
			continue
		}
		ev.Cases = append(ev.Cases, &EventCase{Name: fd.GoName, Field: field(fd), Message: b.message(fd.Message)})
	}
	if len(ev.Cases) == 0 {
		b.errs.add(at, "%s has no event kinds", EventName)
		return nil
	}
	return ev
}

// batch finds and validates the batch convention of a host service.
func (b *builder) batch(s *Service) *Batch {
	msg := b.findMessage(s.File.Package, s.Name+BatchSuffix)
	if msg == nil {
		return nil
	}
	at := pos(msg.Desc)
	bt := &Batch{Message: b.message(msg)}
	for _, fd := range msg.Fields {
		if fd.Desc.Cardinality() == protoreflect.Repeated && fd.Message != nil && !fd.Desc.IsMap() {
			if bt.Ops != nil {
				b.errs.add(pos(fd.Desc), "%s has two repeated message fields (%s, %s); the batch convention wants exactly one list of ops", msg.Desc.Name(), bt.Ops.Name, fd.Desc.Name())
				return nil
			}
			bt.Ops = field(fd)
			bt.Op = b.message(fd.Message)
		}
	}
	if bt.Ops == nil {
		b.errs.add(at, "%s (the batch of service %s) has no repeated op field", msg.Desc.Name(), s.Name)
		return nil
	}
	op := bt.Op.Proto
	if len(op.Oneofs) != 1 || op.Oneofs[0].Desc.IsSynthetic() || len(op.Oneofs[0].Fields) != len(op.Fields) {
		b.errs.add(pos(op.Desc), "%s (the op of %s) must hold exactly one oneof and nothing else", op.Desc.Name(), msg.Desc.Name())
		return nil
	}
	bt.OneofProto = op.Oneofs[0]
	bt.Oneof = string(bt.OneofProto.Desc.Name())

	used := map[*Method]string{}
	for _, fd := range bt.OneofProto.Fields {
		fat := pos(fd.Desc)
		if fd.Message == nil {
			b.errs.add(fat, "%s.%s must be the request message of a %s method", op.Desc.Name(), fd.Desc.Name(), s.Name)
			continue
		}
		var found []*Method
		for _, m := range s.Methods {
			if m.Input.FullName == string(fd.Message.Desc.FullName()) {
				found = append(found, m)
			}
		}
		switch {
		case len(found) == 0:
			b.errs.add(fat, "%s.%s carries %s, which is the request of no %s method", op.Desc.Name(), fd.Desc.Name(), fd.Message.Desc.Name(), s.Name)
			continue
		case len(found) > 1:
			b.errs.add(fat, "%s.%s carries %s, which is the request of several %s methods (%s, %s)", op.Desc.Name(), fd.Desc.Name(), fd.Message.Desc.Name(), s.Name, found[0].Name, found[1].Name)
			continue
		}
		m := found[0]
		switch {
		case m.Optional:
			b.errs.add(fat, "%s.%s maps to %s.%s, which is optional; batch ops must call required methods", op.Desc.Name(), fd.Desc.Name(), s.Name, m.Name)
		case !m.ReturnsEmpty:
			b.errs.add(fat, "%s.%s maps to %s.%s, which returns %s; batch ops are writes and must return %s", op.Desc.Name(), fd.Desc.Name(), s.Name, m.Name, m.Output.Name, EmptyName)
		case used[m] != "":
			b.errs.add(fat, "%s.%s and %s both map to %s.%s", op.Desc.Name(), fd.Desc.Name(), used[m], s.Name, m.Name)
		}
		used[m] = string(fd.Desc.Name())
		bt.Cases = append(bt.Cases, &BatchCase{Field: field(fd), Method: m})
	}

	if len(bt.Cases) == 0 {
		b.errs.add(pos(op.Desc), "%s (the op of %s) has no cases", op.Desc.Name(), msg.Desc.Name())
		return nil
	}

	// The scope: the first singular string field of the batch that every op request has.
	for _, fd := range msg.Fields {
		if !isString(fd) || fd.Oneof != nil {
			continue
		}
		name := string(fd.Desc.Name())
		all := len(bt.Cases) > 0
		for _, c := range bt.Cases {
			if stringField(c.Method.Input.Proto, name) == nil {
				all = false
			}
		}
		if all {
			bt.Scope = field(fd)
			break
		}
	}
	if bt.Scope != nil {
		for _, c := range bt.Cases {
			c.Scope = field(stringField(c.Method.Input.Proto, bt.Scope.Name))
		}
		var loads []*Method
		for _, m := range s.Required {
			in := m.Input.Proto
			if used[m] == "" && len(in.Fields) == 1 && stringField(in, bt.Scope.Name) != nil {
				loads = append(loads, m)
			}
		}
		switch len(loads) {
		case 0:
		case 1:
			bt.Load = loads[0]
			bt.LoadScope = field(loads[0].Input.Proto.Fields[0])
			if fd := stringField(loads[0].Output.Proto, bt.Scope.Name); fd != nil {
				bt.LoadOutputScope = field(fd)
			}
		default:
			b.errs.add(pos(s.Proto.Desc), "%s: several methods (%s, %s) take only the batch scope %s; the batch adapter's Load would be ambiguous", s.Name, loads[0].Name, loads[1].Name, bt.Scope.Name)
		}
	}

	for _, g := range s.Groups {
		if g.Name != TransactionsGroup {
			continue
		}
		tx := &Transactions{Group: g}
		for _, m := range g.Methods {
			var scope *Field
			if bt.Scope != nil {
				if fd := stringField(m.Input.Proto, bt.Scope.Name); fd != nil {
					scope = field(fd)
				}
			}
			switch m.Name {
			case "Begin":
				tx.Begin, tx.BeginScope = m, scope
			case "Commit":
				tx.Commit, tx.CommitScope = m, scope
			case "Rollback":
				tx.Rollback, tx.RollbackScope = m, scope
			default:
				b.errs.add(pos(m.Proto.Desc), "%s.%s: the %s capability consists of Begin, Commit and Rollback only", s.Name, m.Name, TransactionsGroup)
			}
			if !m.ReturnsEmpty {
				b.errs.add(pos(m.Proto.Desc), "%s.%s must return %s", s.Name, m.Name, EmptyName)
			}
		}
		if tx.Begin == nil || tx.Commit == nil || tx.Rollback == nil {
			b.errs.add(pos(s.Proto.Desc), "%s: the %s capability needs all of Begin, Commit and Rollback", s.Name, TransactionsGroup)
			return nil
		}
		bt.Transactions = tx
	}
	return bt
}

// findMessage returns the top-level message name of a proto package, or nil.
func (b *builder) findMessage(pkg, name string) *protogen.Message {
	for _, f := range b.gen.Files {
		if string(f.Desc.Package()) != pkg {
			continue
		}
		for _, m := range f.Messages {
			if string(m.Desc.Name()) == name {
				return m
			}
		}
	}
	return nil
}

// field returns the model field of a protogen field.
func field(fd *protogen.Field) *Field {
	return &Field{Name: string(fd.Desc.Name()), Number: int32(fd.Desc.Number()), Proto: fd}
}

// stringField returns msg's singular, non-oneof string field name, or nil.
func stringField(msg *protogen.Message, name string) *protogen.Field {
	for _, fd := range msg.Fields {
		if string(fd.Desc.Name()) == name && isString(fd) && fd.Oneof == nil {
			return fd
		}
	}
	return nil
}

// isString reports whether fd is a singular string field.
func isString(fd *protogen.Field) bool {
	return fd.Desc.Kind() == protoreflect.StringKind && fd.Desc.Cardinality() != protoreflect.Repeated
}

// isEmpty reports whether msg is an Empty message (named Empty, no fields).
func isEmpty(msg *protogen.Message) bool {
	return msg.Desc.Name() == EmptyName && len(msg.Fields) == 0
}

// enumPrefix returns the conventional prefix of an enum's values: ErrorCode → "ERROR_CODE_".
func enumPrefix(e *protogen.Enum) string {
	var sb strings.Builder
	for i, r := range string(e.Desc.Name()) {
		if i > 0 && r >= 'A' && r <= 'Z' {
			sb.WriteByte('_')
		}
		sb.WriteRune(r)
	}
	return strings.ToUpper(sb.String()) + "_"
}

// Comment returns a leading comment without comment markers and surrounding blanks.
func Comment(c protogen.Comments) string {
	lines := strings.Split(strings.TrimRight(string(c), "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// pos returns "file:line:column" of a descriptor (just the file without source info).
func pos(d protoreflect.Descriptor) string {
	f := d.ParentFile()
	if f == nil {
		return ""
	}
	loc := f.SourceLocations().ByDescriptor(d)
	if loc.Path == nil {
		return f.Path()
	}
	return fmt.Sprintf("%s:%d:%d", f.Path(), loc.StartLine+1, loc.StartColumn+1)
}

// IDLHash returns the hex SHA-256 that identifies the IDL a generation ran on: the files
// to generate, sorted by name, each without its source info (comments and positions)
// and serialized deterministically, hashed as (name length, name, length, bytes). Any
// change to a declaration, field, option or import changes it; comments and layout do
// not. Every generator of a buf generate run gets the same files, so every SDK embeds
// the same hash.
func IDLHash(req *pluginpb.CodeGeneratorRequest) (string, error) {
	byName := map[string]*descriptorpb.FileDescriptorProto{}
	for _, f := range req.GetProtoFile() {
		byName[f.GetName()] = f
	}
	names := slices.Clone(req.GetFileToGenerate())
	slices.Sort(names)
	h := sha256.New()
	for _, name := range names {
		f, ok := byName[name]
		if !ok {
			return "", fmt.Errorf("no descriptor for file to generate %q", name)
		}
		f = proto.CloneOf(f)
		f.SourceCodeInfo = nil
		data, err := proto.MarshalOptions{Deterministic: true}.Marshal(f)
		if err != nil {
			return "", fmt.Errorf("IDL hash: %s: %w", name, err)
		}
		writeChunk(h, []byte(name))
		writeChunk(h, data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeChunk writes a length-prefixed chunk.
func writeChunk(h interface{ Write([]byte) (int, error) }, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
