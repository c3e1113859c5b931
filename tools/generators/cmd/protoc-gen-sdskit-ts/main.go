// Command protoc-gen-sdskit-ts is the protoc/buf plugin that generates sdskit's
// TypeScript SDK surface (<file>_sdk.ts, next to protoc-gen-es's <file>_pb.ts) from the
// IDL: the Result<T, SdsError> union and SdsError, the typed class of each core service,
// the interface and dispatcher of each host service, the typed event emitter and the ABI
// facts. See package tsgen and docs/idl.md.
//
// buf.gen.yaml runs it as a local plugin, next to protoc-gen-es:
//
//   - local: bin/protoc-gen-sdskit-ts
//     out: sdk-ts/src/gen
//     opt: import_extension=js
//     strategy: all
package main

import (
	"github.com/sdskit/sdskit/tools/generators/tsgen"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	var opts tsgen.Options
	protogen.Options{ParamFunc: opts.Set}.Run(func(gen *protogen.Plugin) error {
		gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
		return tsgen.Generate(gen, opts)
	})
}
