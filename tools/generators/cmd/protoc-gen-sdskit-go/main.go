// Command protoc-gen-sdskit-go is the protoc/buf plugin that generates sdskit's Go SDK
// surface (<file>.sdk.go, next to protoc-gen-go's <file>.pb.go) from the IDL: typed
// service interfaces, dispatch tables, clients, the persistence batch adapter, typed
// events, error mapping and the ABI facts. See package gogen and docs/idl.md.
//
// buf.gen.yaml runs it as a local plugin:
//
//   - local: bin/protoc-gen-sdskit-go
//     out: gen/go
//     opt: paths=source_relative
//     strategy: all
package main

import (
	"github.com/sdskit/sdskit/tools/generators/gogen"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	protogen.Options{}.Run(func(gen *protogen.Plugin) error {
		gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
		return gogen.Generate(gen)
	})
}
