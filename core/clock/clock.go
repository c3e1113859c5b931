// Package clock holds the time source of the core: the real wall clock for production
// and a manual clock that tests and the simulator advance explicitly, so that hours of
// protocol time run in milliseconds and deterministically.
package clock

import (
	"sync"
	"time"
)

// Clock tells the current time.
type Clock interface {
	Now() time.Time
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Manual is a clock that only moves when told to. It is safe for concurrent use.
type Manual struct {
	mu  sync.Mutex
	now time.Time
}

// NewManual returns a manual clock set to start.
func NewManual(start time.Time) *Manual { return &Manual{now: start} }

// Now returns the clock's current time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Advance moves the clock forward by d (a negative d is ignored: time never goes back).
func (m *Manual) Advance(d time.Duration) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d > 0 {
		m.now = m.now.Add(d)
	}
	return m.now
}

// Set moves the clock to t if t is later than the current time.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.After(m.now) {
		m.now = t
	}
}

// UnixMilli returns t as Unix milliseconds, the resolution of every persisted deadline.
func UnixMilli(t time.Time) int64 { return t.UnixMilli() }

// FromUnixMilli returns the time of a persisted Unix-millisecond value.
func FromUnixMilli(ms int64) time.Time { return time.UnixMilli(ms) }
