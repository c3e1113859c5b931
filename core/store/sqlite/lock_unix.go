//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// fileLock is an exclusive advisory lock (flock) held on a lock file next to the
// database for as long as a Store is open. flock locks belong to an open file
// description, so a second Open in the same process conflicts just like one in another
// process, and the kernel releases the lock when its holder dies.
type fileLock struct {
	f *os.File
}

// ErrInUse is wrapped by the error of Open when another sdskit manager (in this process
// or another) holds the database.
var ErrInUse = errors.New("the database is in use by another sdskit manager")

// acquireLock takes the exclusive lock on path (creating the file) without waiting.
func acquireLock(path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		// A read-only lock file still works as a lock; a read-only directory where the
		// lock file cannot be created does not.
		if f, err = os.Open(path); err != nil {
			return nil, fmt.Errorf("cannot open the lock file %s: %w", path, err)
		}
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (lock file %s is held); close the other manager or use another path", ErrInUse, path)
		}
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	return &fileLock{f: f}, nil
}

// release drops the lock. The lock file stays: removing it could let a concurrent
// Open lock a file that a third one is about to replace.
func (l *fileLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
