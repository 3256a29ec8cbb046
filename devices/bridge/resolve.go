package bridge

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hearth-home/hearth/devices"
)

// resolve finds the devices a request names. Every word of the request must match a word of
// the device's name, its area or its kind, exactly, as a prefix of at least three letters, or
// within one typo for words of four letters or more. A singular request that matches several
// devices takes the best-scoring one, preferring the room's own area; a tie is an error that
// lists the candidates rather than a guess. "all ..." and plural kinds take every match that
// can carry out the command.
func resolve(req Request, entries []devices.Entry, area string) ([]devices.Entry, error) {
	if len(req.Words) == 0 && req.Kind == "" && !req.All {
		return nil, fmt.Errorf("which device? Say for example \"kitchen light on\"")
	}
	type scored struct {
		e     devices.Entry
		score int
	}
	var matches []scored
	for _, e := range entries {
		if req.Kind != "" && e.Device.Kind != req.Kind {
			continue
		}
		s, ok := matchScore(req.Words, deviceWords(e.Device))
		if !ok {
			continue
		}
		if area != "" && strings.EqualFold(e.Device.Area, area) {
			s++
		}
		if len(req.Hints) > 0 {
			if h, ok := matchScore(req.Hints, tokenize(e.Device.Name)); ok && h >= 3*len(req.Hints) {
				s++
			}
		}
		matches = append(matches, scored{e, s})
	}
	what := describeTarget(req)
	if len(matches) == 0 {
		return nil, fmt.Errorf("no device matches %q", what)
	}
	slices.SortStableFunc(matches, func(a, b scored) int { return b.score - a.score })
	var out []devices.Entry
	if req.All || req.Plural || (len(req.Words) == 0 && req.Kind == "") {
		for _, m := range matches {
			if accepts(m.e.Device, req.Cmd) == nil {
				out = append(out, m.e)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("none of the devices matching %q can do that", what)
		}
		return out, nil
	}
	best := matches[0].score
	var tied []string
	for _, m := range matches {
		if m.score == best {
			tied = append(tied, m.e.Device.Name)
		}
	}
	if len(tied) > 1 {
		return nil, fmt.Errorf("%q could be %s: say which, or \"all\"", what, strings.Join(tied, ", "))
	}
	if err := accepts(matches[0].e.Device, req.Cmd); err != nil {
		return nil, err
	}
	return []devices.Entry{matches[0].e}, nil
}

func describeTarget(req Request) string {
	w := slices.Clone(req.Words)
	if req.Kind != "" {
		w = append(w, string(req.Kind))
	}
	if req.All {
		w = append([]string{"all"}, w...)
	}
	return strings.Join(w, " ")
}

// deviceWords are the words a device answers to.
func deviceWords(d devices.Device) []string {
	w := tokenize(d.Name + " " + d.Area)
	w = append(w, string(d.Kind))
	if _, local, ok := strings.Cut(d.ID, ":"); ok {
		w = append(w, tokenize(strings.ReplaceAll(local, "_", " "))...)
	}
	return w
}

// matchScore scores how well the request's words name a device; ok is false when a word
// matches nothing.
func matchScore(req, dev []string) (int, bool) {
	total := 0
	for _, r := range req {
		best := 0
		for _, d := range dev {
			best = max(best, wordScore(r, d))
		}
		if best == 0 {
			return 0, false
		}
		total += best
	}
	return total, true
}

func wordScore(r, d string) int {
	r, d = strings.TrimSuffix(r, "s"), strings.TrimSuffix(d, "s")
	switch {
	case r == d:
		return 3
	case len(r) >= 3 && strings.HasPrefix(d, r):
		return 2
	case len(r) >= 4 && len(d) >= 4 && len(r)-len(d) <= 1 && len(d)-len(r) <= 1 && editDistance(r, d) <= 1:
		return 1
	}
	return 0
}

// editDistance is the Levenshtein distance; words are short, so the quadratic table is fine.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// accepts explains why a device cannot carry out a command, or returns nil.
func accepts(d devices.Device, c devices.Command) error {
	switch d.Kind {
	case devices.Sensor, devices.BinarySensor:
		return fmt.Errorf("%s is a sensor: it reports, it does not take commands", d.Name)
	case devices.Switch:
		if c.Brightness != nil || c.ColorTemp != nil || c.Color != nil || c.Action != "" {
			return fmt.Errorf("%s is a switch: it only turns on and off", d.Name)
		}
	case devices.Light:
		if c.Action != "" {
			return fmt.Errorf("%s is a light: it cannot %s", d.Name, c.Action)
		}
		if c.Brightness != nil && !d.Caps.Brightness {
			return fmt.Errorf("%s cannot be dimmed", d.Name)
		}
		if c.ColorTemp != nil && !d.Caps.ColorTemp {
			return fmt.Errorf("%s has no colour temperature", d.Name)
		}
		if c.Color != nil && !d.Caps.Color {
			return fmt.Errorf("%s cannot change colour", d.Name)
		}
	case devices.Drone:
		if c.Action == "" {
			return fmt.Errorf("%s is a drone: say takeoff, land, up 50, cw 90 ...", d.Name)
		}
	}
	return nil
}
