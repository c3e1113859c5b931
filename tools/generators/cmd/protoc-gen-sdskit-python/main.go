// Command protoc-gen-sdskit-python is the protoc/buf plugin that generates the typed
// Python surface of sdskit (<package path>/sdk.py, next to the standard generator's
// *_pb2.py): ABI facts and the library check, Ok/Err Results, typed sync and asyncio
// clients of the core services, host-service Protocols and dispatch, capability bits,
// event dataclasses and handler. See package pygen.
//
// buf.gen.python.yaml runs it as a local plugin:
//
//   - local: bin/protoc-gen-sdskit-python
//     out: sdk-python/src
//     strategy: all
package main

import (
	"github.com/sdskit/sdskit/tools/generators/pygen"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	protogen.Options{}.Run(func(gen *protogen.Plugin) error {
		gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
		return pygen.Generate(gen)
	})
}
