package clientapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/delayed"
	"github.com/hearth-home/hearth/matrix/merr"
)

// Delayed events, MSC4140 in its unstable form (org.matrix.msc4140): the delay is a query
// parameter of PUT /send and PUT /state, and the management endpoints take the delay_id as
// their only credential (no access token), so that a call's SFU can restart or send a
// participant's delayed "leave" for it. Listing needs the owner's access token.

// DelayedFeature is the unstable feature advertised in /versions.
const DelayedFeature = "org.matrix.msc4140"

const (
	delayQueryParam    = "org.matrix.msc4140.delay"
	delayedEventsPath  = "/unstable/org.matrix.msc4140/delayed_events"
	delayActionCancel  = "cancel"
	delayActionRestart = "restart"
	delayActionSend    = "send"
)

func (a *API) routesDelayed(g *echo.Group) {
	if a.deps.Delayed == nil {
		return
	}
	g.GET(delayedEventsPath, a.listDelayedEvents, a.auth, a.rateLimited)
	// The action-in-body form is the MSC's earlier one, still used by deployed clients.
	g.POST(delayedEventsPath+"/:delayId", a.updateDelayedEventBody, a.rateLimited)
	g.POST(delayedEventsPath+"/:delayId/:action", a.updateDelayedEventPath, a.rateLimited)
}

// delayParam reads ?org.matrix.msc4140.delay; ok is false when the request is an ordinary
// send (or the server has delayed events switched off, when the parameter is ignored as any
// unknown parameter is).
func (a *API) delayParam(c echo.Context) (d time.Duration, ok bool, err error) {
	if a.deps.Delayed == nil {
		return 0, false, nil
	}
	vs, ok := c.QueryParams()[delayQueryParam]
	if !ok {
		return 0, false, nil
	}
	if len(vs) != 1 {
		return 0, true, merr.InvalidParam("%s must be given once", delayQueryParam)
	}
	ms, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil || ms <= 0 {
		return 0, true, merr.InvalidParam("%s must be a positive integer number of milliseconds", delayQueryParam)
	}
	if maxDelay := a.deps.Delayed.MaxDelay(); ms > maxDelay.Milliseconds() {
		return 0, true, delayed.MaxDelayExceeded(maxDelay)
	}
	return time.Duration(ms) * time.Millisecond, true, nil
}

// sendDelayed schedules the event of a PUT /send (txnID set, content nil: read here, after
// the transaction check, since a retry may come without a body) or PUT /state (content read).
func (a *API) sendDelayed(c echo.Context, delay time.Duration, roomID id.RoomID, typ string, stateKey *string, txnID string, content json.RawMessage) error {
	sess := session(c)
	svc := a.deps.Delayed
	if txnID != "" {
		prev, err := svc.ByTxn(sess.User, sess.Device, delayed.TxnScope(roomID, typ, txnID))
		if err != nil {
			return err
		}
		if prev != "" {
			return c.JSON(http.StatusOK, map[string]string{"delay_id": prev})
		}
	}
	if content == nil {
		var err error
		if content, err = readObject(c); err != nil {
			return err
		}
	}
	delayID, err := svc.Schedule(c.Request().Context(), delayed.Request{
		User: sess.User, Device: sess.Device, TxnID: txnID, RoomID: roomID,
		Type: typ, StateKey: stateKey, Content: content, Delay: delay,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"delay_id": delayID})
}

// delayedEventJSON is one entry of the list, with the unstable field names (delay and
// running_since, both in milliseconds).
type delayedEventJSON struct {
	DelayID      string          `json:"delay_id"`
	RoomID       string          `json:"room_id"`
	Type         string          `json:"type"`
	StateKey     *string         `json:"state_key,omitempty"`
	Delay        int64           `json:"delay"`
	RunningSince int64           `json:"running_since"`
	Content      json.RawMessage `json:"content"`
}

func (a *API) listDelayedEvents(c echo.Context) error {
	recs := a.deps.Delayed.List(session(c).User)
	out := make([]delayedEventJSON, 0, len(recs))
	for _, r := range recs {
		content := r.Content
		if len(content) == 0 {
			content = json.RawMessage("{}")
		}
		out = append(out, delayedEventJSON{DelayID: r.DelayID, RoomID: r.RoomID, Type: r.Type, StateKey: r.StateKey,
			Delay: r.DelayMS, RunningSince: r.RunningSince, Content: content})
	}
	return c.JSON(http.StatusOK, map[string]any{"delayed_events": out})
}

func (a *API) updateDelayedEventBody(c echo.Context) error {
	var body struct {
		Action *json.RawMessage `json:"action"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body.Action == nil {
		return merr.MissingParam("action is required: cancel, restart or send")
	}
	var action string
	if err := json.Unmarshal(*body.Action, &action); err != nil || !validDelayAction(action) {
		return merr.InvalidParam("action must be cancel, restart or send")
	}
	return a.updateDelayedEvent(c, action)
}

func (a *API) updateDelayedEventPath(c echo.Context) error {
	action := c.Param("action")
	if !validDelayAction(action) {
		// As an unknown path: the action is part of the endpoint's name.
		return merr.Unrecognized("unrecognized delayed event action %q", action)
	}
	// The body is an empty object; it is read so that bad JSON is still refused.
	var body map[string]json.RawMessage
	if err := readJSON(c, &body); err != nil {
		return err
	}
	return a.updateDelayedEvent(c, action)
}

func validDelayAction(s string) bool {
	return s == delayActionCancel || s == delayActionRestart || s == delayActionSend
}

func (a *API) updateDelayedEvent(c echo.Context, action string) error {
	delayID := c.Param("delayId")
	svc := a.deps.Delayed
	var err error
	switch action {
	case delayActionCancel:
		err = svc.Cancel(delayID)
	case delayActionRestart:
		err = svc.Restart(delayID)
	default:
		err = svc.SendNow(c.Request().Context(), delayID)
	}
	if err != nil {
		return err
	}
	return noContent(c)
}
