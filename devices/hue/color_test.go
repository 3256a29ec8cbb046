package hue

import (
	"math"
	"testing"

	"github.com/hearth-home/hearth/devices"
)

func TestRGBToXYPrimaries(t *testing.T) {
	for _, c := range []struct {
		in   devices.Color
		want xy
	}{
		{devices.Color{R: 255}, xy{0.64, 0.33}},                    // sRGB red primary
		{devices.Color{G: 255}, xy{0.3, 0.6}},                      // green primary
		{devices.Color{B: 255}, xy{0.15, 0.06}},                    // blue primary
		{devices.Color{R: 255, G: 255, B: 255}, xy{0.3127, 0.329}}, // D65 white
		{devices.Color{}, d65},                                     // black has no chromaticity
	} {
		got := rgbToXY(c.in)
		if math.Abs(got.X-c.want.X) > 0.0002 || math.Abs(got.Y-c.want.Y) > 0.0002 {
			t.Errorf("rgbToXY(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestXYRoundTrip(t *testing.T) {
	// Brightness travels separately, so full-scale colours come back as they went.
	for _, c := range []devices.Color{
		{R: 255}, {G: 255}, {B: 255}, {R: 255, G: 255, B: 255},
		{R: 255, G: 128}, {R: 40, G: 200, B: 255}, {R: 255, G: 0, B: 255}, {R: 255, G: 180, B: 107},
	} {
		got := xyToRGB(rgbToXY(c))
		if d := maxDiff(got, c); d > 2 {
			t.Errorf("round trip %v -> %v (off by %d)", c, got, d)
		}
	}
}

func maxDiff(a, b devices.Color) int {
	d := func(x, y uint8) int { return int(math.Abs(float64(x) - float64(y))) }
	return max(d(a.R, b.R), d(a.G, b.G), d(a.B, b.B))
}

func TestKelvinMirek(t *testing.T) {
	schema := &mirekSchema{Minimum: 153, Maximum: 454}
	for _, c := range []struct {
		k      int
		schema *mirekSchema
		want   int
	}{
		{4000, schema, 250},
		{2700, schema, 370},
		{10000, schema, 153}, // bluer than the lamp can: clamped
		{1000, schema, 454},  // redder than the lamp can: clamped
		{1000, nil, 500},     // default range
	} {
		if got := kelvinToMirek(c.k, c.schema); got != c.want {
			t.Errorf("kelvinToMirek(%d) = %d, want %d", c.k, got, c.want)
		}
	}
	if got := mirekToKelvin(366); got != 2732 {
		t.Errorf("mirekToKelvin(366) = %d, want 2732", got)
	}
}
