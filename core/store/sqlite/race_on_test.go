//go:build race

package sqlite

// raceEnabled lightens the volume tests under the race detector, whose point there is
// the concurrency, not the volume (the normal run does the full volume).
const raceEnabled = true
