package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sdskit/sdskit/core/sim"
)

// simProgress shows a running simulation on stderr: a bar redrawn in place at most ten
// times a second on a terminal, or a plain line every tenth of the way otherwise (CI logs
// and pipes get no carriage returns).
type simProgress struct {
	w         io.Writer
	mode      string // bar, lines, off
	last      time.Time
	lastTenth int
	drawn     bool
}

const redrawEvery = 100 * time.Millisecond

func newSimProgress(w io.Writer, mode string) *simProgress {
	if mode == "auto" {
		mode = "lines"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				mode = "bar"
			}
		}
	}
	return &simProgress{w: w, mode: mode, lastTenth: -1}
}

func (p *simProgress) update(s sim.Progress) {
	// Half the way is posting, the other half delivering everything posted: the settle
	// time is only an upper bound, so simulated time says little about what is left.
	frac := 1.0
	if !s.Done {
		frac = 0.5*float64(s.Posted)/float64(max(1, s.Messages)) +
			0.5*min(1, float64(s.Deliveries)/float64(max(1, s.Messages*(s.Peers-1))))
	}
	switch p.mode {
	case "bar":
		if !s.Done && time.Since(p.last) < redrawEvery {
			return
		}
		p.last = time.Now()
		const width = 30
		n := int(frac * width)
		fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  sim %s  posted %d/%d  delivered %d/%d  online %d \x1b[K",
			strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac,
			s.Elapsed.Round(time.Second), s.Posted, s.Messages, s.Deliveries, s.Expected, s.Online)
		p.drawn = true
	case "lines":
		tenth := int(frac * 10)
		if tenth <= p.lastTenth && !s.Done {
			return
		}
		p.lastTenth = tenth
		fmt.Fprintf(p.w, "simulate: %3.0f%%  sim %s  posted %d/%d  delivered %d/%d  online %d\n",
			100*frac, s.Elapsed.Round(time.Second), s.Posted, s.Messages, s.Deliveries, s.Expected, s.Online)
	}
}

// finish ends the bar's line so that what follows starts on a fresh one.
func (p *simProgress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
