package gogen_test

import (
	"strings"
	"testing"

	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// fixtureFile returns a file of the image.
func fixtureFile(t *testing.T, set *descriptorpb.FileDescriptorSet, name string) *descriptorpb.FileDescriptorProto {
	t.Helper()
	for _, f := range set.GetFile() {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no file %s", name)
	return nil
}

func service(t *testing.T, set *descriptorpb.FileDescriptorSet, name string) *descriptorpb.ServiceDescriptorProto {
	t.Helper()
	for _, s := range fixtureFile(t, set, "fixture/v1/service.proto").GetService() {
		if s.GetName() == name {
			return s
		}
	}
	t.Fatalf("no service %s", name)
	return nil
}

func method(t *testing.T, set *descriptorpb.FileDescriptorSet, svc, name string) *descriptorpb.MethodDescriptorProto {
	t.Helper()
	for _, m := range service(t, set, svc).GetMethod() {
		if m.GetName() == name {
			return m
		}
	}
	t.Fatalf("no method %s.%s", svc, name)
	return nil
}

func message(t *testing.T, set *descriptorpb.FileDescriptorSet, file, name string) *descriptorpb.DescriptorProto {
	t.Helper()
	for _, m := range fixtureFile(t, set, file).GetMessageType() {
		if m.GetName() == name {
			return m
		}
	}
	t.Fatalf("no message %s in %s", name, file)
	return nil
}

// TestValidation breaks the fixture IDL in one way at a time and checks that the
// generator refuses it with an error that says where and what to do.
func TestValidation(t *testing.T) {
	const svcFile = "fixture/v1/service.proto"
	tests := []struct {
		name   string
		break_ func(t *testing.T, set *descriptorpb.FileDescriptorSet)
		want   []string // substrings of the error
	}{
		{
			name: "service without a role",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				service(t, set, "Counter").Options = nil
			},
			want: []string{svcFile + ":", "service Counter has no role", "SERVICE_ROLE_CORE", "SERVICE_ROLE_HOST"},
		},
		{
			name: "duplicate method id",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				proto.SetExtension(method(t, set, "Counter", "Get").Options, sdskitv1.E_MethodId, uint32(1))
			},
			want: []string{svcFile + ":", "Counter.Get: method id 1 is already used by Counter.Add"},
		},
		{
			name: "method without an id",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				method(t, set, "Counter", "Add").Options = nil
			},
			want: []string{"Counter.Add has no method id", "(sdskit.v1.method_id)"},
		},
		{
			name: "two problems at once",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				service(t, set, "Store").Options = nil
				proto.SetExtension(method(t, set, "Store", "Delete").Options, sdskitv1.E_MethodId, uint32(1))
			},
			want: []string{"service Store has no role", "Store.Delete: method id 1 is already used by Store.Put"},
		},
		{
			name: "optional method in a core service",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				o := method(t, set, "Counter", "Clear").Options
				proto.SetExtension(o, sdskitv1.E_OptionalMethod, true)
				proto.SetExtension(o, sdskitv1.E_OptionalGroup, "Extras")
			},
			want: []string{"Counter.Clear is optional, but Counter is a core service"},
		},
		{
			name: "optional method without a capability",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				proto.ClearExtension(method(t, set, "Store", "Compact").Options, sdskitv1.E_OptionalGroup)
			},
			want: []string{"Store.Compact is optional but names no capability"},
		},
		{
			name: "capability on a required method",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				proto.SetExtension(method(t, set, "Store", "Put").Options, sdskitv1.E_OptionalGroup, "Writes")
			},
			want: []string{`Store.Put has optional_group "Writes" but is not optional`},
		},
		{
			name: "streaming rpc",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				method(t, set, "Counter", "Get").ServerStreaming = proto.Bool(true)
			},
			want: []string{"Counter.Get is a streaming rpc"},
		},
		{
			name: "incomplete Transactions capability",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				proto.SetExtension(method(t, set, "Store", "Rollback").Options, sdskitv1.E_OptionalGroup, "Other")
			},
			want: []string{"Store: the Transactions capability needs all of Begin, Commit and Rollback"},
		},
		{
			name: "batch op that is no method's request",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				op := message(t, set, svcFile, "StoreOp")
				op.Field = append(op.Field, &descriptorpb.FieldDescriptorProto{
					Name: proto.String("add"), Number: proto.Int32(3), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
					Type: descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(), TypeName: proto.String(".fixture.v1.AddRequest"),
					JsonName: proto.String("add"), OneofIndex: proto.Int32(0),
				})
			},
			want: []string{"StoreOp.add carries AddRequest, which is the request of no Store method"},
		},
		{
			name: "batch op of a method with a value",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				op := message(t, set, svcFile, "StoreOp")
				op.Field = append(op.Field, &descriptorpb.FieldDescriptorProto{
					Name: proto.String("load"), Number: proto.Int32(3), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
					Type: descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(), TypeName: proto.String(".fixture.v1.LoadBucketRequest"),
					JsonName: proto.String("load"), OneofIndex: proto.Int32(0),
				})
			},
			want: []string{"StoreOp.load maps to Store.LoadBucket, which returns Bucket; batch ops are writes and must return Empty"},
		},
		{
			name: "no Result message",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				message(t, set, "fixture/v1/errors.proto", "Result").Name = proto.String("Outcome")
			},
			want: []string{"the IDL declares services but no Result message"},
		},
		{
			name: "error code the runtime needs is missing",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				e := fixtureFile(t, set, "fixture/v1/errors.proto").GetEnumType()[0]
				e.Value = e.Value[:len(e.Value)-2] // drops CANCELLED and NOT_FOUND
			},
			want: []string{"ErrorCode has no value ERROR_CODE_CANCELLED"},
		},
		{
			name: "event union with a field outside its oneof",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				ev := message(t, set, "fixture/v1/events.proto", "Event")
				ev.Field = append(ev.Field, &descriptorpb.FieldDescriptorProto{
					Name: proto.String("at"), Number: proto.Int32(9), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
					Type: descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum(), JsonName: proto.String("at"),
				})
			},
			want: []string{"Event must hold exactly one oneof and nothing else"},
		},
		{
			name: "generated identifier clashes with a message",
			break_: func(t *testing.T, set *descriptorpb.FileDescriptorSet) {
				f := fixtureFile(t, set, svcFile)
				f.MessageType = append(f.MessageType, &descriptorpb.DescriptorProto{Name: proto.String("CounterServer")})
			},
			want: []string{"the generated Go identifier CounterServer clashes with protoc-gen-go's CounterServer (for fixture.v1.CounterServer)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := loadFixture(t)
			tt.break_(t, set)
			_, err := generate(t, request(set))
			if err == nil {
				t.Fatal("the generator accepted the broken IDL")
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
