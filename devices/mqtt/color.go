package mqtt

import (
	"math"

	"github.com/hearth-home/hearth/devices"
)

// kelvinToMireds and miredsToKelvin convert colour temperature: mired = 1,000,000 / kelvin.
func kelvinToMireds(k int) int {
	if k <= 0 {
		return 0
	}
	return int(math.Round(1e6 / float64(k)))
}

func miredsToKelvin(m float64) int {
	if m <= 0 {
		return 0
	}
	return int(math.Round(1e6 / m))
}

// percentToScale maps 0-100 % to 0-scale, rounding half up: 50 % of 255 is 128, of 254 is 127.
func percentToScale(p int, scale float64) int {
	p = min(max(p, 0), 100)
	return int(math.Floor(float64(p)*scale/100 + 0.5))
}

// scaleToPercent maps a device brightness 0-scale back to percent.
func scaleToPercent(v, scale float64) int {
	if scale <= 0 {
		return 0
	}
	return min(max(int(math.Round(v*100/scale)), 0), 100)
}

// srgbToLinear and linearToSRGB are the sRGB transfer functions (IEC 61966-2-1).
func srgbToLinear(c float64) float64 {
	if c <= 0.04045 {
		return c / 12.92
	}
	return math.Pow((c+0.055)/1.055, 2.4)
}

func linearToSRGB(c float64) float64 {
	if c <= 0.0031308 {
		return 12.92 * c
	}
	return 1.055*math.Pow(c, 1/2.4) - 0.055
}

// rgbToXY returns the CIE 1931 chromaticity of an sRGB colour (D65 matrix).
func rgbToXY(c devices.Color) (x, y float64) {
	r := srgbToLinear(float64(c.R) / 255)
	g := srgbToLinear(float64(c.G) / 255)
	b := srgbToLinear(float64(c.B) / 255)
	X := 0.4124*r + 0.3576*g + 0.1805*b
	Y := 0.2126*r + 0.7152*g + 0.0722*b
	Z := 0.0193*r + 0.1192*g + 0.9505*b
	sum := X + Y + Z
	if sum == 0 {
		return 0.3127, 0.3290 // white point for black: the chromaticity is undefined
	}
	return round4(X / sum), round4(Y / sum)
}

// xyToRGB returns the brightest sRGB colour with chromaticity (x, y); brightness is reported
// separately by the lights that use xy.
func xyToRGB(x, y float64) devices.Color {
	if y <= 0 {
		return devices.Color{R: 255, G: 255, B: 255}
	}
	Y := 1.0
	X := x * Y / y
	Z := (1 - x - y) * Y / y
	r := 3.2406*X - 1.5372*Y - 0.4986*Z
	g := -0.9689*X + 1.8758*Y + 0.0415*Z
	b := 0.0557*X - 0.2040*Y + 1.0570*Z
	r, g, b = max(r, 0), max(g, 0), max(b, 0)
	m := max(r, g, b)
	if m > 0 {
		r, g, b = r/m, g/m, b/m
	}
	return devices.Color{R: to8(linearToSRGB(r)), G: to8(linearToSRGB(g)), B: to8(linearToSRGB(b))}
}

// rgbToHS returns hue (degrees) and saturation (percent), HA's hs colour space.
func rgbToHS(c devices.Color) (h, s float64) {
	r, g, b := float64(c.R)/255, float64(c.G)/255, float64(c.B)/255
	mx, mn := max(r, g, b), min(r, g, b)
	d := mx - mn
	switch {
	case d == 0:
		h = 0
	case mx == r:
		h = math.Mod((g-b)/d, 6) * 60
	case mx == g:
		h = ((b-r)/d + 2) * 60
	default:
		h = ((r-g)/d + 4) * 60
	}
	if h < 0 {
		h += 360
	}
	if mx > 0 {
		s = d / mx * 100
	}
	return math.Round(h*10) / 10, math.Round(s*10) / 10
}

// hsToRGB is the inverse of rgbToHS at full value.
func hsToRGB(h, s float64) devices.Color {
	s = min(max(s, 0), 100) / 100
	h = math.Mod(math.Mod(h, 360)+360, 360) / 60
	c := s
	x := c * (1 - math.Abs(math.Mod(h, 2)-1))
	var r, g, b float64
	switch int(h) {
	case 0:
		r, g = c, x
	case 1:
		r, g = x, c
	case 2:
		g, b = c, x
	case 3:
		g, b = x, c
	case 4:
		r, b = x, c
	default:
		r, b = c, x
	}
	m := 1 - c
	return devices.Color{R: to8(r + m), G: to8(g + m), B: to8(b + m)}
}

func to8(f float64) uint8 {
	return uint8(math.Round(min(max(f, 0), 1) * 255))
}

func round4(f float64) float64 { return math.Round(f*10000) / 10000 }
