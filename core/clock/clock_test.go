package clock

import (
	"testing"
	"time"
)

func TestManualAdvanceNeverGoesBack(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	c := NewManual(start)
	if got := c.Advance(1500 * time.Millisecond); !got.Equal(start.Add(1500 * time.Millisecond)) {
		t.Fatalf("Advance = %v", got)
	}
	c.Advance(-time.Hour)
	c.Set(start)
	if got := c.Now(); !got.Equal(start.Add(1500 * time.Millisecond)) {
		t.Fatalf("clock went back: %v", got)
	}
	c.Set(start.Add(time.Hour))
	if got := c.Now(); !got.Equal(start.Add(time.Hour)) {
		t.Fatalf("Set = %v", got)
	}
}

func TestUnixMilliRoundTrip(t *testing.T) {
	ts := time.UnixMilli(1_700_000_123_456)
	if !FromUnixMilli(UnixMilli(ts)).Equal(ts) {
		t.Fatal("round trip changed the time")
	}
}
