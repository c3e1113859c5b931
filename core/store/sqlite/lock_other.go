//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqlite

import "errors"

// fileLock is a no-op on platforms without flock: there the single-owner rule is not
// enforced and the caller must not open one database from two managers.
type fileLock struct{}

// ErrInUse is wrapped by the error of Open when another sdskit manager holds the
// database (never returned on this platform).
var ErrInUse = errors.New("the database is in use by another sdskit manager")

func acquireLock(string) (*fileLock, error) { return &fileLock{}, nil }

func (l *fileLock) release() {}
