module github.com/sdskit/sdskit/tools/generators

go 1.26.0

require (
	github.com/dave/jennifer v1.7.1
	github.com/sdskit/sdskit v0.0.0
	google.golang.org/protobuf v1.36.12
)

// The generator links the committed gen/go/sdskit/v1/options.pb.go (the Go types of the
// role / method_id / optional_method options); see docs/idl.md, "Bootstrap".
replace github.com/sdskit/sdskit => ../..
