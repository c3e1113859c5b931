module github.com/sdskit/sdskit

go 1.26

require (
	github.com/dgryski/go-farm v0.0.0-20240924180020-3414d57e47da
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/bits-and-blooms/bitset v1.24.2 // indirect
	github.com/bits-and-blooms/bloom/v3 v3.7.1 // indirect
)
