// Package gentest holds the tests of the Go code generated from the IDL by
// protoc-gen-sdskit-go (gen/go/sdskit/v1/*.sdk.go): error mapping, dispatch tables and
// clients, the persistence batch adapter and typed events. They live here, not in gen/,
// because `make generate` empties gen/go before regenerating it. The package has no
// code of its own.
package gentest
