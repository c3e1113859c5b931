package model_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"github.com/sdskit/sdskit/tools/generators/model"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

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
	req := &pluginpb.CodeGeneratorRequest{Parameter: proto.String("paths=source_relative")}
	for _, f := range set.GetFile() {
		req.ProtoFile = append(req.ProtoFile, f)
		if strings.HasPrefix(f.GetName(), "fixture/") {
			req.FileToGenerate = append(req.FileToGenerate, f.GetName())
		}
	}
	return req
}

func build(t *testing.T, req *pluginpb.CodeGeneratorRequest) *model.Model {
	t.Helper()
	gen, err := protogen.Options{}.New(req)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Build(gen)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestModelOfFixture(t *testing.T) {
	m := build(t, fixtureRequest(t))
	if m.ABIVersion != model.ABIVersion || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(m.IDLHash) {
		t.Fatalf("ABI facts: %d %q", m.ABIVersion, m.IDLHash)
	}
	if m.Errors == nil || m.Errors.File.Path != "fixture/v1/errors.proto" || m.Errors.CodePrefix != "ERROR_CODE_" {
		t.Fatalf("error model: %+v", m.Errors)
	}
	if m.Events == nil || len(m.Events.Cases) != 2 || m.Events.Cases[0].Name != "Added" || m.Events.Cases[1].Message.Name != "Cleared" {
		t.Fatalf("events: %+v", m.Events)
	}
	var svcs []*model.Service
	for _, f := range m.Files {
		svcs = append(svcs, f.Services...)
	}
	if len(svcs) != 2 {
		t.Fatalf("services: %d", len(svcs))
	}
	counter, store := svcs[0], svcs[1]
	if counter.Role != model.RoleCore || store.Role != model.RoleHost || counter.Batch != nil {
		t.Fatalf("roles: %v %v, counter batch %v", counter.Role, store.Role, counter.Batch)
	}
	if got := names(counter.Methods); got != "Add:1 Get:2 Clear:7" {
		t.Errorf("counter methods: %s", got)
	}
	if !counter.Methods[2].ReturnsEmpty || counter.Methods[0].ReturnsEmpty {
		t.Error("ReturnsEmpty")
	}
	if got := names(store.Required); got != "Put:1 Delete:2 LoadBucket:3" {
		t.Errorf("store required: %s", got)
	}
	if len(store.Groups) != 2 || store.Groups[0].Name != "Transactions" || names(store.Groups[0].Methods) != "Begin:10 Commit:11 Rollback:12" ||
		store.Groups[1].Name != "Maintenance" || names(store.Groups[1].Methods) != "Compact:20" {
		t.Errorf("store groups: %+v", store.Groups)
	}

	bt := store.Batch
	if bt == nil {
		t.Fatal("no batch")
	}
	if bt.Message.Name != "StoreBatch" || bt.Op.Name != "StoreOp" || bt.Ops.Name != "ops" || bt.Oneof != "op" {
		t.Errorf("batch messages: %s %s %s %s", bt.Message.Name, bt.Op.Name, bt.Ops.Name, bt.Oneof)
	}
	var cases []string
	for _, c := range bt.Cases {
		cases = append(cases, c.Field.Name+"→"+c.Method.Name+"("+c.Scope.Name+")")
	}
	if got := strings.Join(cases, " "); got != "put→Put(bucket) delete→Delete(bucket)" {
		t.Errorf("batch cases: %s", got)
	}
	if bt.Scope.Name != "bucket" || bt.Load.Name != "LoadBucket" || bt.LoadScope.Name != "bucket" || bt.LoadOutputScope.Name != "bucket" {
		t.Errorf("scope/load: %+v", bt)
	}
	if tx := bt.Transactions; tx == nil || tx.Begin.Name != "Begin" || tx.Commit.Name != "Commit" || tx.Rollback.Name != "Rollback" || tx.BeginScope.Name != "bucket" {
		t.Errorf("transactions: %+v", bt.Transactions)
	}
}

func names(ms []*model.Method) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name+":"+strconv.Itoa(int(m.ID)))
	}
	return strings.Join(out, " ")
}

// TestIDLHash: any change of a declaration changes the hash; comments, positions and
// the order of the request's files do not.
func TestIDLHash(t *testing.T) {
	base, err := model.IDLHash(fixtureRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := model.IDLHash(fixtureRequest(t))
	if base != again {
		t.Fatal("not deterministic")
	}

	find := func(req *pluginpb.CodeGeneratorRequest, name string) *descriptorpb.FileDescriptorProto {
		for _, f := range req.ProtoFile {
			if f.GetName() == name {
				return f
			}
		}
		t.Fatalf("no %s", name)
		return nil
	}
	same := map[string]func(*pluginpb.CodeGeneratorRequest){
		"comments and positions": func(r *pluginpb.CodeGeneratorRequest) {
			for _, f := range r.ProtoFile {
				f.SourceCodeInfo = nil
			}
		},
		"file order": func(r *pluginpb.CodeGeneratorRequest) {
			fs := r.FileToGenerate
			for i, j := 0, len(fs)-1; i < j; i, j = i+1, j-1 {
				fs[i], fs[j] = fs[j], fs[i]
			}
		},
	}
	for name, mutate := range same {
		req := fixtureRequest(t)
		mutate(req)
		if h, _ := model.IDLHash(req); h != base {
			t.Errorf("%s changed the hash", name)
		}
	}
	differ := map[string]func(*pluginpb.CodeGeneratorRequest){
		"field type": func(r *pluginpb.CodeGeneratorRequest) {
			f := find(r, "fixture/v1/service.proto").GetMessageType()[0].GetField()[1] // AddRequest.delta
			f.Type = descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum()
		},
		"field name": func(r *pluginpb.CodeGeneratorRequest) {
			find(r, "fixture/v1/events.proto").GetMessageType()[0].GetField()[0].Name = proto.String("counter")
		},
		"method id": func(r *pluginpb.CodeGeneratorRequest) {
			proto.SetExtension(find(r, "fixture/v1/service.proto").GetService()[0].GetMethod()[0].Options, sdskitv1.E_MethodId, uint32(9))
		},
		"new rpc": func(r *pluginpb.CodeGeneratorRequest) {
			s := find(r, "fixture/v1/service.proto").GetService()[0]
			s.Method = append(s.Method, &descriptorpb.MethodDescriptorProto{Name: proto.String("Sub"), InputType: proto.String(".fixture.v1.AddRequest"), OutputType: proto.String(".fixture.v1.AddResponse")})
		},
	}
	for name, mutate := range differ {
		req := fixtureRequest(t)
		mutate(req)
		if h, _ := model.IDLHash(req); h == base {
			t.Errorf("%s did not change the hash", name)
		}
	}
}
