package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var plotColors = []color.Color{
	color.RGBA{R: 0xd9, G: 0x5f, B: 0x02, A: 0xff}, // Hearth: orange
	color.RGBA{R: 0x75, G: 0x70, B: 0xb3, A: 0xff}, // Hearth with a memory limit: purple
	color.RGBA{R: 0x1b, G: 0x9e, B: 0x77, A: 0xff}, // Dendrite: green
	color.RGBA{R: 0x66, G: 0x66, B: 0x66, A: 0xff},
}

// percentileTicks labels the x axis (percentile index) with the percentile.
type percentileTicks struct{}

func (percentileTicks) Ticks(min, max float64) []plot.Tick {
	var t []plot.Tick
	for i, p := range percentilePoints {
		t = append(t, plot.Tick{Value: float64(i), Label: fmt.Sprintf("p%g", p)})
	}
	return t
}

// writePlot draws send latency and sync wake latency percentiles, one line per server, on a
// log scale, side by side in one PNG.
func writePlot(rep *report, path string) error {
	panel := func(title string, get func(*result) []float64) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "percentile"
		p.Y.Label.Text = "ms (log scale)"
		p.X.Tick.Marker = percentileTicks{}
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Legend.Top = true
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
		for i, name := range rep.Order {
			vals := get(rep.Targets[name])
			if len(vals) == 0 {
				continue
			}
			pts := make(plotter.XYs, len(vals))
			for j, v := range vals {
				pts[j].X, pts[j].Y = float64(j), max(v, 0.1) // a log scale has no zero
			}
			line, points, err := plotter.NewLinePoints(pts)
			if err != nil {
				return nil, err
			}
			c := plotColors[i%len(plotColors)]
			line.Color, line.Width = c, vg.Points(2)
			points.Color, points.Shape = c, draw.CircleGlyph{}
			p.Add(line, points)
			p.Legend.Add(name, line, points)
		}
		p.X.Min, p.X.Max = -0.3, float64(len(percentilePoints)-1)+0.3
		return p, nil
	}
	send, err := panel(fmt.Sprintf("send latency (%d msgs, %d senders)", rep.Params.Messages, rep.Params.Senders),
		func(r *result) []float64 { return r.SendPercentiles })
	if err != nil {
		return err
	}
	wake, err := panel(fmt.Sprintf("sync wake latency (%d syncers)", rep.Params.Syncers),
		func(r *result) []float64 { return r.WakePercentiles })
	if err != nil {
		return err
	}
	img := vgimg.New(vg.Points(1100), vg.Points(420))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(12), PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{{send, wake}}, tiles, dc)
	send.Draw(canvases[0][0])
	wake.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
