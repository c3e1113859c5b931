// Package buf pins the version of the buf CLI that `make generate` and `make check` run.
// It lives in its own module so that buf's dependencies never enter the library's
// dependency graph (buf needs a newer protobuf runtime than the one we generate for).
package buf
