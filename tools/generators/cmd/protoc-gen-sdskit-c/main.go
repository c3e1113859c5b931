// Command protoc-gen-sdskit-c is the protoc/buf plugin that generates the header of
// sdskit's C shared library (<prefix>.h) from the IDL: ABI facts, error codes, service
// names, method ids, capability bits and the exported functions. See package cgen.
//
// buf.gen.yaml runs it as a local plugin:
//
//   - local: bin/protoc-gen-sdskit-c
//     out: gen/c
//     strategy: all
package main

import (
	"github.com/sdskit/sdskit/tools/generators/cgen"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	protogen.Options{}.Run(func(gen *protogen.Plugin) error {
		gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
		return cgen.Generate(gen)
	})
}
