package bridge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/hearth-home/hearth/devices"
)

// Request is a parsed text command: what to do (Cmd, or Help/Status/Confirm) and the words that
// name the target. Names are resolved against the registry by resolve.go.
type Request struct {
	Help, Status, Confirm bool
	// Words are the remaining lower-case words naming the device or area ("kitchen", "ceiling").
	Words []string
	// Kind is set when a kind word was used ("light", "lights", "drone"); Plural when it was
	// plural, which like All means every matching device.
	Kind   devices.Kind
	Plural bool
	// Hints are the kind words as typed ("lamp"): a device with the word in its name is
	// preferred when several match.
	Hints []string
	All   bool
	Cmd   devices.Command
	// Explicit is true for "!"-prefixed text: errors are answered even if it does not parse.
	Explicit bool
}

// maxCommandLen bounds the text Parse considers.
const maxCommandLen = 300

// ErrNotCommand means the text is ordinary chat, not addressed to the bridge.
var ErrNotCommand = errors.New("not a command")

// filler words carry no meaning for the target or the action.
var filler = map[string]bool{
	"turn": true, "set": true, "to": true, "the": true, "please": true, "at": true, "in": true,
	"of": true, "brightness": true, "colour": true, "color": true, "a": true,
	"an": true, "my": true, "make": true, "put": true, "and": true, "now": true, "percent": true,
}

// kindWords map a word to a kind and whether it is plural.
var kindWords = map[string]struct {
	kind   devices.Kind
	plural bool
}{
	"light": {devices.Light, false}, "lights": {devices.Light, true},
	"lamp": {devices.Light, false}, "lamps": {devices.Light, true},
	"bulb": {devices.Light, false}, "bulbs": {devices.Light, true},
	"plug": {devices.Switch, false}, "plugs": {devices.Switch, true},
	"socket": {devices.Switch, false}, "sockets": {devices.Switch, true},
	"switches": {devices.Switch, true},
	"sensor":   {devices.Sensor, false}, "sensors": {devices.Sensor, true},
	"drone": {devices.Drone, false}, "drones": {devices.Drone, true},
}

// colours are the names accepted as a colour (as the last word of a command).
var colours = map[string]devices.Color{
	"red": {R: 255}, "green": {G: 255}, "blue": {B: 255}, "white": {R: 255, G: 255, B: 255},
	"yellow": {R: 255, G: 255}, "orange": {R: 255, G: 165}, "purple": {R: 128, B: 128},
	"pink": {R: 255, G: 105, B: 180}, "cyan": {G: 255, B: 255}, "magenta": {R: 255, B: 255},
}

// droneMoves take an optional distance (cm) or angle (degrees).
var droneMoves = map[string]bool{
	"up": true, "down": true, "left": true, "right": true, "forward": true, "back": true,
	"cw": true, "ccw": true,
}

// droneVerbs are drone actions without an argument.
var droneVerbs = map[string]bool{"takeoff": true, "land": true, "emergency": true, "flip": true}

// Parse reads one message. Words are case-insensitive; a leading "!" marks the text as meant
// for the bridge, and "!light kitchen on" reads as "light kitchen on".
func Parse(text string) (Request, error) {
	var req Request
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, "!") {
		req.Explicit = true
		text = text[1:]
	}
	if len(text) > maxCommandLen {
		// Commands are short; a long text is a chat message (and matching it would be costly).
		if req.Explicit {
			return req, fmt.Errorf("a command is at most %d characters", maxCommandLen)
		}
		return req, ErrNotCommand
	}
	words := tokenize(text)
	if len(words) == 0 {
		return req, ErrNotCommand
	}
	switch {
	case len(words) == 1 && words[0] == "help":
		req.Help = true
		return req, nil
	case words[0] == "status" || words[0] == "list":
		req.Status = true
		req.Words = dropFiller(words[1:])
		return req, nil
	case len(words) == 1 && (words[0] == "confirm" || words[0] == "yes"):
		req.Confirm = true
		return req, nil
	}
	action := false
	var rest []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		next := ""
		if i+1 < len(words) {
			next = words[i+1]
		}
		switch {
		case w == "on" || w == "off":
			on := w == "on"
			req.Cmd.On = &on
			action = true
		case w == "take" && next == "off":
			req.Cmd.Action = "takeoff"
			req.Kind = devices.Drone
			action = true
			i++
		case droneVerbs[w]:
			req.Cmd.Action = w
			req.Kind = devices.Drone
			action = true
		case droneMoves[w] && (next == "" || isNumber(next)) && hasWord(words, "drone"):
			req.Cmd.Action = w
			if next != "" {
				n, _ := strconv.Atoi(next)
				req.Cmd.Amount = n
				i++
			}
			action = true
		case strings.HasSuffix(w, "%") && isNumber(strings.TrimSuffix(w, "%")):
			n, _ := strconv.Atoi(strings.TrimSuffix(w, "%"))
			if n < 0 || n > 100 {
				return req, fmt.Errorf("brightness %d%% is out of range: say 0%% to 100%%", n)
			}
			req.Cmd.Brightness = &n
			action = true
		case strings.HasSuffix(w, "k") && isNumber(strings.TrimSuffix(w, "k")):
			n, _ := strconv.Atoi(strings.TrimSuffix(w, "k"))
			if n < 1000 || n > 10000 {
				return req, fmt.Errorf("colour temperature %dK is out of range: say 1000K to 10000K", n)
			}
			req.Cmd.ColorTemp = &n
			action = true
		case strings.HasPrefix(w, "#") && len(w) == 7:
			c, err := hexColour(w)
			if err != nil {
				return req, err
			}
			req.Cmd.Color = &c
			action = true
		case i == len(words)-1 && isColour(w) && len(rest) > 0:
			c := colours[w]
			req.Cmd.Color = &c
			action = true
		case isNumber(w) && i > 0 && words[i-1] == "to":
			// "set kitchen light to 50" / "... to 2700": a bare number is a percentage or kelvin.
			n, _ := strconv.Atoi(w)
			switch {
			case n >= 0 && n <= 100:
				req.Cmd.Brightness = &n
			case n >= 1000 && n <= 10000:
				req.Cmd.ColorTemp = &n
			default:
				return req, fmt.Errorf("%d is neither a brightness (0-100) nor a colour temperature (1000-10000)", n)
			}
			action = true
		case w == "all" || w == "every" || w == "everything":
			req.All = true
		case w == "switch" && i == 0:
			// "switch off the lamp": a verb here, a kind elsewhere ("kitchen switch off").
		case w == "temperature" && i > 0 && (words[i-1] == "colour" || words[i-1] == "color"):
		case kindWords[w].kind != "":
			k := kindWords[w]
			req.Kind, req.Plural = k.kind, req.Plural || k.plural
			req.Hints = append(req.Hints, w)
		case w == "switch":
			req.Kind = devices.Switch
		case filler[w]:
		default:
			rest = append(rest, w)
		}
	}
	req.Words = rest
	if !action {
		if req.Explicit {
			return req, errors.New("I did not find what to do: say on, off, 50%, 2700K, a colour, or help")
		}
		return req, ErrNotCommand
	}
	return req, nil
}

func isColour(w string) bool { _, ok := colours[w]; return ok }

func hasWord(words []string, w string) bool {
	for _, x := range words {
		if x == w || x == w+"s" {
			return true
		}
	}
	return false
}

func dropFiller(words []string) []string {
	var out []string
	for _, w := range words {
		if !filler[w] && w != "all" {
			out = append(out, w)
		}
	}
	return out
}

func isNumber(s string) bool {
	if s == "" || len(s) > 6 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func hexColour(w string) (devices.Color, error) {
	v, err := strconv.ParseUint(w[1:], 16, 32)
	if err != nil {
		return devices.Color{}, fmt.Errorf("%s is not a colour: write #rrggbb", w)
	}
	return devices.Color{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v)}, nil
}

// tokenize lower-cases and splits on anything but letters, digits, '%', '#' and '-', so
// "Kitchen-Light, 50%!" gives ["kitchen-light", "50%"].
func tokenize(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '%' && r != '#' && r != '_'
	})
}
