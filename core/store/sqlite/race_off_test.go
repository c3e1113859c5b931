//go:build !race

package sqlite

// raceEnabled lightens the volume tests under the race detector (see race_on_test.go).
const raceEnabled = false
