package drone

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hearth-home/hearth/devices"
)

var (
	// ErrNeedsConfirm is matched (errors.Is) by the error of an action that needs the user's
	// confirmation; see ConfirmError.
	ErrNeedsConfirm = errors.New("drone: action needs confirmation")
	// ErrTimeout is returned when the drone does not answer in time.
	ErrTimeout = errors.New("drone: no answer")
	// ErrRefused is returned when the drone answers "error ..." (or anything but "ok").
	ErrRefused = errors.New("drone: command refused")
	// ErrInvalidCommand is returned for commands the drone does not take as given.
	ErrInvalidCommand = errors.New("drone: invalid command")
	// ErrUnknownDevice is returned for an ID that is not this drone.
	ErrUnknownDevice = errors.New("drone: unknown device")
	// ErrNotRunning is returned by Command while Run is not running.
	ErrNotRunning = errors.New("drone: adapter not running")
)

// confirmMark, appended to an action, says the user confirmed it.
const confirmMark = "!"

// ConfirmError is returned for an action that needs confirmation before it is carried out.
type ConfirmError struct {
	Action string // the action asked for, e.g. "takeoff"
	Prompt string // what to ask the user
}

func (e *ConfirmError) Error() string {
	return fmt.Sprintf("drone: %s needs confirmation: %s", e.Action, e.Prompt)
}

// Is makes errors.Is(err, ErrNeedsConfirm) true.
func (e *ConfirmError) Is(target error) bool { return target == ErrNeedsConfirm }

// ConfirmPrompt is the question for the user; callers that do not import this package can
// find it with errors.As and an interface{ ConfirmPrompt() string }.
func (e *ConfirmError) ConfirmPrompt() string { return e.Prompt }

// Confirm returns c marked as confirmed by the user.
func Confirm(c devices.Command) devices.Command {
	c.Action = strings.TrimSuffix(c.Action, confirmMark) + confirmMark
	return c
}

// Limits of the SDK 2.0 move commands.
const (
	minMove, maxMove   = 20, 500 // cm
	minTurn, maxTurn   = 1, 360  // degrees
	minSpeed, maxSpeed = 10, 100 // cm/s
	defaultMove        = 50
	defaultTurn        = 90
)

// request is one SDK command line and how to treat its answer.
type request struct {
	line  string
	query bool // answered with a value, idempotent: may be repeated
	// reading is where a query's numeric answer is reported.
	reading string
}

// translate turns a Command into the SDK line to send. A zero Amount means a default step
// for moves and turns, and a query for "speed".
func translate(c devices.Command) (request, error) {
	if c.On != nil || c.Brightness != nil || c.ColorTemp != nil || c.Color != nil {
		return request{}, fmt.Errorf("%w: a drone takes actions, not on/brightness/colour", ErrInvalidCommand)
	}
	action, confirmed := strings.CutSuffix(strings.ToLower(strings.TrimSpace(c.Action)), confirmMark)
	n := c.Amount
	switch action {
	case "takeoff":
		if !confirmed {
			return request{}, &ConfirmError{Action: action,
				Prompt: "The drone will start its motors and climb to about 1 m. Make sure it stands clear. Reply 'confirm' to take off."}
		}
		return request{line: "takeoff"}, nil
	case "land", "emergency", "stop":
		return request{line: action}, nil
	case "up", "down", "left", "right", "forward", "back":
		if n == 0 {
			n = defaultMove
		}
		if n < minMove || n > maxMove {
			return request{}, fmt.Errorf("%w: %s takes %d-%d cm, not %d", ErrInvalidCommand, action, minMove, maxMove, n)
		}
		return request{line: action + " " + strconv.Itoa(n)}, nil
	case "cw", "ccw":
		if n == 0 {
			n = defaultTurn
		}
		if n < minTurn || n > maxTurn {
			return request{}, fmt.Errorf("%w: %s takes %d-%d degrees, not %d", ErrInvalidCommand, action, minTurn, maxTurn, n)
		}
		return request{line: action + " " + strconv.Itoa(n)}, nil
	case "speed":
		if n == 0 {
			return request{line: "speed?", query: true, reading: "speed"}, nil
		}
		if n < minSpeed || n > maxSpeed {
			return request{}, fmt.Errorf("%w: speed takes %d-%d cm/s, not %d", ErrInvalidCommand, minSpeed, maxSpeed, n)
		}
		return request{line: "speed " + strconv.Itoa(n)}, nil
	case "battery":
		return request{line: "battery?", query: true, reading: "bat"}, nil
	case "time":
		return request{line: "time?", query: true, reading: "flight_time"}, nil
	case "":
		return request{}, fmt.Errorf("%w: no action", ErrInvalidCommand)
	}
	return request{}, fmt.Errorf("%w: unknown action %q", ErrInvalidCommand, action)
}

// parseState reads one state datagram: "key:value;" pairs. Values that are not single
// numbers (the mission pad's "mpry:0,0,0") are skipped.
func parseState(pkt string) map[string]float64 {
	out := map[string]float64{}
	for _, field := range strings.Split(strings.TrimSpace(pkt), ";") {
		k, v, ok := strings.Cut(field, ":")
		if !ok || k == "" {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			continue
		}
		out[strings.TrimSpace(k)] = f
	}
	return out
}

// parseValue reads a query's answer: "87", "10.0", or "12s" for time?.
func parseValue(reply string) (float64, error) {
	v := strings.TrimSuffix(strings.TrimSpace(reply), "s")
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: unexpected answer %q", ErrRefused, reply)
	}
	return f, nil
}
