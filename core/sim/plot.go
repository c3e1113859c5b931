package sim

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot file names written by WritePlots.
const (
	PlotLatencyCDF   = "latency_cdf.png"
	PlotBytesPerMsg  = "bytes_per_delivered.png"
	PlotRepairResend = "repair_resend.png"
)

// WritePlots renders the result's plots as PNG files into dir: the delivery latency
// CDF, the bytes on the wire per delivered message over time, and the resend, repair and
// sync traffic over time. It returns the paths written.
func WritePlots(dir string, r *Result) ([]string, error) {
	var paths []string
	for _, f := range []struct {
		name string
		make func(*Result) (*plot.Plot, error)
	}{
		{PlotLatencyCDF, latencyCDF},
		{PlotBytesPerMsg, bytesPerDelivered},
		{PlotRepairResend, repairResend},
	} {
		p, err := f.make(r)
		if err != nil {
			return paths, fmt.Errorf("plot %s: %w", f.name, err)
		}
		path := filepath.Join(dir, f.name)
		if err := p.Save(18*vg.Centimeter, 11*vg.Centimeter, path); err != nil {
			return paths, fmt.Errorf("plot %s: %w", f.name, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func subtitle(r *Result) string {
	s := r.Scenario
	return fmt.Sprintf("%d participants, %d messages, loss %.0f%%, %s latency, seed %d",
		s.Peers, r.Posted, 100*s.Loss, orDefault(s.Latency.Dist, "uniform"), s.Seed)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// latencyCDF plots the fraction of deliveries made within x seconds; the x axis is
// logarithmic when every latency is positive, because repaired deliveries take orders of
// magnitude longer than direct ones and would otherwise squash the direct ones into
// one column.
func latencyCDF(r *Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Delivery latency CDF\n" + subtitle(r)
	p.X.Label.Text = "latency from first broadcast to MessageReady (s)"
	p.Y.Label.Text = "fraction of deliveries"
	p.Y.Min, p.Y.Max = 0, 1
	ls := slices.Clone(r.latencies)
	slices.Sort(ls)
	if len(ls) == 0 {
		return p, nil
	}
	const maxPoints = 2000
	step := max(1, len(ls)/maxPoints)
	var pts plotter.XYs
	for i := 0; i < len(ls); i += step {
		pts = append(pts, plotter.XY{X: ls[i].Seconds(), Y: float64(i+1) / float64(len(ls))})
	}
	pts = append(pts, plotter.XY{X: ls[len(ls)-1].Seconds(), Y: 1})
	if ls[0] > 0 {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	l.Color = plotutil.Color(0)
	l.Width = vg.Points(1.5)
	p.Add(l)
	return p, nil
}

// bytesPerDelivered plots, over time, the bytes put on the wire so far divided by the
// messages delivered so far, per kind of packet and in total.
func bytesPerDelivered(r *Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Bytes on the wire per delivered message (cumulative)\n" + subtitle(r)
	p.X.Label.Text = "simulated time (min)"
	p.Y.Label.Text = "bytes / delivered message"
	lines := make([]plotter.XYs, numKinds+1)
	var bytes [numKinds]int
	deliveries := 0
	for _, b := range r.Series {
		deliveries += b.Deliveries
		total := 0
		for k := range numKinds {
			bytes[k] += b.Bytes[k]
			total += bytes[k]
		}
		if deliveries == 0 {
			continue
		}
		x := minutes(b)
		for k := range numKinds {
			lines[k] = append(lines[k], plotter.XY{X: x, Y: float64(bytes[k]) / float64(deliveries)})
		}
		lines[numKinds] = append(lines[numKinds], plotter.XY{X: x, Y: float64(total) / float64(deliveries)})
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	var vs []any
	vs = append(vs, "total", lines[numKinds])
	for k := range numKinds {
		vs = append(vs, k.String(), lines[k])
	}
	if len(lines[numKinds]) == 0 {
		return p, nil
	}
	return p, addLines(p, vs...)
}

// repairResend plots the packets of each kind put on the wire per time bucket.
func repairResend(r *Result) (*plot.Plot, error) {
	p := plot.New()
	bucket := r.Scenario.Bucket
	if bucket <= 0 {
		bucket = time.Minute
	}
	p.Title.Text = "Repair, resend and sync traffic\n" + subtitle(r)
	p.X.Label.Text = "simulated time (min)"
	p.Y.Label.Text = "packets broadcast per " + strings.TrimSuffix(strings.TrimSuffix(bucket.String(), "0s"), "0m")
	lines := make([]plotter.XYs, numKinds)
	for _, b := range r.Series {
		for k := range numKinds {
			lines[k] = append(lines[k], plotter.XY{X: minutes(b), Y: float64(b.Packets[k])})
		}
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	if len(r.Series) == 0 {
		return p, nil
	}
	return p, addLines(p, "resend", lines[Resend], "repair", lines[Repair], "sync", lines[Sync], "content", lines[Content])
}

func minutes(b Bucket) float64 {
	return float64(b.StartMs) / float64(time.Minute.Milliseconds())
}

// addLines adds named lines and raises the top of the y axis so that the legend, drawn
// in the top right corner, sits above the data rather than on it.
func addLines(p *plot.Plot, vs ...any) error {
	if err := plotutil.AddLines(p, vs...); err != nil {
		return err
	}
	if p.Y.Max > p.Y.Min {
		p.Y.Max = p.Y.Min + 1.45*(p.Y.Max-p.Y.Min)
	}
	return nil
}
