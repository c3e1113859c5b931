//go:build !race

package sds

// busRaceDetector is true when the tests run under the race detector, which makes the
// bus simulations several times slower (see TestBusConvergenceWithRestartsOnMemoryBackend).
const busRaceDetector = false
