package main

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var (
	colCDCD     = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colDebezium = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	colLimit    = color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}
)

// barGroup is one series of a grouped bar chart.
type barGroup struct {
	name string
	col  color.Color
	vals []float64 // NaN: no bar
}

// groupedBars draws one group of bars per label and saves a PNG. logY draws log10 of the
// values (bars start at the decade below the smallest value; ticks are labelled with the
// values themselves): gonum's LogScale cannot draw bars, which start at 0.
func groupedBars(path, title, yLabel string, labels []string, groups []barGroup, logY bool) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Legend.Left = false
	w := vg.Points(14)
	if len(groups)*len(labels) > 24 {
		w = vg.Points(8)
	}
	base := 0.0
	if logY {
		lo := math.Inf(1)
		for _, g := range groups {
			for _, v := range g.vals {
				if v > 0 && !math.IsNaN(v) {
					lo = math.Min(lo, v)
				}
			}
		}
		if !math.IsInf(lo, 1) {
			base = math.Floor(math.Log10(lo))
		}
		p.Y.Tick.Marker = decadeTicks{base: base}
	}
	n := len(groups)
	top := 0.0
	for i, g := range groups {
		vals := make(plotter.Values, len(g.vals))
		for j, v := range g.vals {
			switch {
			case math.IsNaN(v) || v <= 0:
				vals[j] = 0
			case logY:
				vals[j] = math.Log10(v) - base
			default:
				vals[j] = v
			}
			top = math.Max(top, vals[j])
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		b.Color = g.col
		b.LineStyle.Width = 0
		b.Offset = vg.Length(float64(i)-float64(n-1)/2) * w
		p.Add(b)
		p.Legend.Add(g.name, b)
	}
	p.NominalX(labels...)
	p.Y.Min = 0
	if logY {
		p.Y.Max = math.Ceil(top + 0.3 + 0.15*float64(len(groups))) // room for the legend
	} else {
		p.Y.Max = top * 1.25
	}
	p.Add(plotter.NewGrid())
	width := vg.Length(math.Max(16, 1.1*float64(len(labels)*len(groups))+4)) * vg.Centimeter
	if err := p.Save(width, 11*vg.Centimeter, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// decadeTicks labels a log10 axis whose 0 is 10^base.
type decadeTicks struct{ base float64 }

func (d decadeTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for k := math.Floor(min); k <= max; k++ {
		ts = append(ts, plot.Tick{Value: k, Label: humanFloat(math.Pow(10, k+d.base))})
		for m := 2.0; m < 10; m++ {
			if v := k + math.Log10(m); v <= max {
				ts = append(ts, plot.Tick{Value: v})
			}
		}
	}
	return ts
}

func humanFloat(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

// shade mixes c with white: f = 1 keeps c, smaller is lighter.
func shade(c color.RGBA, f float64) color.RGBA {
	mix := func(v uint8) uint8 { return uint8(float64(v)*f + 255*(1-f)) }
	return color.RGBA{R: mix(c.R), G: mix(c.G), B: mix(c.B), A: 0xff}
}
