package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Latency is a packet delay distribution. Every sample is at least Min and, when Max is
// positive, at most Max.
//
//   - "uniform" (or ""): uniform in [Min, Max].
//   - "normal": Mean ± StdDev, cut at Min.
//   - "lognormal": Min plus a log-normal delay whose own mean is Mean−Min and standard
//     deviation StdDev — the long tail of real networks.
//   - "exponential": Min plus an exponential delay of mean Mean−Min.
type Latency struct {
	Dist   string        `json:"dist"`
	Min    time.Duration `json:"min"`
	Max    time.Duration `json:"max"`
	Mean   time.Duration `json:"mean"`
	StdDev time.Duration `json:"stddev"`
}

// Dists lists the accepted distribution names.
var Dists = []string{"uniform", "normal", "lognormal", "exponential"}

// Validate reports a distribution it cannot sample.
func (l Latency) Validate() error {
	if l.Min < 0 || l.Max < 0 || l.Mean < 0 || l.StdDev < 0 {
		return fmt.Errorf("latency: durations must be ≥ 0 (%+v)", l)
	}
	if l.Max > 0 && l.Max < l.Min {
		return fmt.Errorf("latency: max %s < min %s", l.Max, l.Min)
	}
	switch l.Dist {
	case "", "uniform":
	case "normal":
	case "lognormal", "exponential":
		if l.Mean <= l.Min {
			return fmt.Errorf("latency: %s needs mean > min (mean %s, min %s)", l.Dist, l.Mean, l.Min)
		}
		if l.Dist == "lognormal" && l.StdDev <= 0 {
			return fmt.Errorf("latency: lognormal needs stddev > 0")
		}
	default:
		return fmt.Errorf("latency: unknown distribution %q (want one of %v)", l.Dist, Dists)
	}
	return nil
}

// Sample draws one delay from r.
func (l Latency) Sample(r *rand.Rand) time.Duration {
	var d float64
	switch l.Dist {
	case "normal":
		d = float64(l.Mean) + r.NormFloat64()*float64(l.StdDev)
	case "lognormal":
		m, s := float64(l.Mean-l.Min), float64(l.StdDev)
		sigma2 := math.Log1p(s * s / (m * m))
		mu := math.Log(m) - sigma2/2
		d = float64(l.Min) + math.Exp(mu+math.Sqrt(sigma2)*r.NormFloat64())
	case "exponential":
		d = float64(l.Min) + r.ExpFloat64()*float64(l.Mean-l.Min)
	default:
		d = float64(l.Min)
		if span := l.Max - l.Min; span > 0 {
			d += float64(r.Int64N(int64(span) + 1))
		}
	}
	d = max(d, float64(l.Min))
	if l.Max > 0 {
		d = min(d, float64(l.Max))
	}
	return time.Duration(d)
}
