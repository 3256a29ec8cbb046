package hue

import (
	"math"

	"github.com/hearth-home/hearth/devices"
)

// Hue lights take colour as CIE 1931 xy chromaticity and brightness separately; Hearth speaks
// sRGB. The conversions go through linear-light CIE XYZ with the sRGB (D65) matrices. Gamut
// clipping is left to the bridge, which maps an out-of-gamut xy to the nearest colour the lamp
// can make (its gamut depends on the lamp model).

// d65 is the chromaticity of the sRGB white point, used for black, which has none.
var d65 = xy{X: 0.3127, Y: 0.3290}

// rgbToXY converts an sRGB colour to its xy chromaticity.
func rgbToXY(c devices.Color) xy {
	r, g, b := linear(c.R), linear(c.G), linear(c.B)
	x := 0.4124564*r + 0.3575761*g + 0.1804375*b
	y := 0.2126729*r + 0.7151522*g + 0.0721750*b
	z := 0.0193339*r + 0.1191920*g + 0.9503041*b
	sum := x + y + z
	if sum == 0 {
		return d65
	}
	return xy{X: round4(x / sum), Y: round4(y / sum)}
}

// xyToRGB converts a chromaticity to the brightest sRGB colour of that hue: brightness is
// reported separately, so the colour is normalised to full scale.
func xyToRGB(p xy) devices.Color {
	if p.Y <= 0 {
		return devices.Color{R: 255, G: 255, B: 255}
	}
	bigY := 1.0
	bigX := p.X / p.Y
	bigZ := (1 - p.X - p.Y) / p.Y
	r := 3.2404542*bigX - 1.5371385*bigY - 0.4985314*bigZ
	g := -0.9692660*bigX + 1.8760108*bigY + 0.0415560*bigZ
	b := 0.0556434*bigX - 0.2040259*bigY + 1.0572252*bigZ
	r, g, b = math.Max(r, 0), math.Max(g, 0), math.Max(b, 0)
	m := math.Max(r, math.Max(g, b))
	if m == 0 {
		return devices.Color{}
	}
	return devices.Color{R: gamma(r / m), G: gamma(g / m), B: gamma(b / m)}
}

// linear undoes the sRGB transfer curve.
func linear(v uint8) float64 {
	c := float64(v) / 255
	if c <= 0.04045 {
		return c / 12.92
	}
	return math.Pow((c+0.055)/1.055, 2.4)
}

// gamma applies the sRGB transfer curve to a linear value in [0, 1].
func gamma(c float64) uint8 {
	if c <= 0.0031308 {
		c *= 12.92
	} else {
		c = 1.055*math.Pow(c, 1/2.4) - 0.055
	}
	return uint8(math.Round(math.Min(math.Max(c, 0), 1) * 255))
}

// round4 keeps four decimals: the bridge's own precision, and stable request bodies.
func round4(v float64) float64 { return math.Round(v*10000) / 10000 }

// The mirek range most Hue white-ambiance lamps accept (6500 K to 2000 K), used when a light
// does not state its own.
const (
	defaultMirekMin = 153
	defaultMirekMax = 500
)

// kelvinToMirek converts a colour temperature to mireds, clamped to the light's range.
func kelvinToMirek(k int, schema *mirekSchema) int {
	lo, hi := defaultMirekMin, defaultMirekMax
	if schema != nil && schema.Minimum > 0 && schema.Maximum >= schema.Minimum {
		lo, hi = schema.Minimum, schema.Maximum
	}
	if k <= 0 {
		return hi
	}
	m := int(math.Round(1e6 / float64(k)))
	return min(max(m, lo), hi)
}

// mirekToKelvin converts mireds to kelvin.
func mirekToKelvin(m int) int {
	if m <= 0 {
		return 0
	}
	return int(math.Round(1e6 / float64(m)))
}
