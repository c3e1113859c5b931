//go:build !(js && wasm)

package main

import (
	"fmt"
	"os"
)

// main explains how to build the glue: it only makes sense as GOOS=js GOARCH=wasm
// (see main.go; `make wasm` builds it into sdk-ts/dist/sdskit.wasm).
func main() {
	fmt.Fprintln(os.Stderr, "core/wasm is the WebAssembly glue of the sdskit core: build it with GOOS=js GOARCH=wasm (make wasm)")
	os.Exit(2)
}
