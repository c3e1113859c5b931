// Package race tells tests whether the race detector is on: it makes some volume tests
// several times slower and changes what sync.Pool keeps, so those tests adapt.
package race
