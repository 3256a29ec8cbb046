package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/devices"
)

// commandTimeout bounds one adapter command (a drone or a slow Zigbee network).
const commandTimeout = 15 * time.Second

// eventLoop handles the events the homeserver delivered, each in its own goroutine (bounded by
// the worker pool) so a slow device command does not hold up the next message.
func (b *Bridge) eventLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt := <-b.as.Events:
			select {
			case b.workers <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				defer func() { <-b.workers }()
				b.handleEvent(ctx, evt)
			}()
		}
	}
}

// handleEvent dispatches one room event.
func (b *Bridge) handleEvent(ctx context.Context, evt *event.Event) {
	if b.isOurs(evt.Sender) {
		return
	}
	switch evt.Type {
	case event.StateMember:
		// Someone invited the bot to their own room: join, so commands work there too.
		if m := evt.Content.AsMember(); evt.GetStateKey() == b.BotUserID().String() && m.Membership == event.MembershipInvite {
			if err := b.as.BotIntent().EnsureJoined(ctx, evt.RoomID); err != nil {
				b.log.Warn("device bridge: join on invite", "room", evt.RoomID, "err", err)
			}
		}
	case event.EventEncrypted:
		if b.crypto == nil {
			return
		}
		dec, err := b.crypto.decrypt(ctx, evt)
		if err != nil {
			b.log.Warn("device bridge: decrypt", "room", evt.RoomID, "event", evt.ID, "err", err)
			return
		}
		b.handleEvent(ctx, dec)
	case event.EventMessage:
		msg := evt.Content.AsMessage()
		if msg.MsgType != event.MsgText || msg.RelatesTo.GetReplaceID() != "" {
			return
		}
		b.handleText(ctx, evt, msg.Body)
	case commandEventType:
		b.handleStructured(ctx, evt)
	}
}

// permit says why sender may not command devices in room, or returns nil.
func (b *Bridge) permit(ctx context.Context, room id.RoomID, sender id.UserID) error {
	if sender.Homeserver() != b.opt.ServerName && !b.opt.AllowRemote {
		return errors.New("only users of this server may command devices")
	}
	pl, err := b.as.BotIntent().PowerLevels(ctx, room)
	if err != nil {
		return fmt.Errorf("could not read the room's power levels: %w", err)
	}
	if lvl := pl.GetUserLevel(sender); lvl < b.opt.CommandPowerLevel {
		return fmt.Errorf("you need power level %d in this room to command devices (you have %d)", b.opt.CommandPowerLevel, lvl)
	}
	return nil
}

func (b *Bridge) handleText(ctx context.Context, evt *event.Event, body string) {
	req, err := Parse(body)
	if errors.Is(err, ErrNotCommand) {
		return
	}
	if err != nil {
		if req.Explicit {
			b.reply(ctx, evt, nil, err)
		}
		return
	}
	area, bridgeRoom := b.areaOfRoom(evt.RoomID)
	if !bridgeRoom && !req.Explicit && !req.Help && !req.Status {
		// In a room of the user's own, only "!" commands are ours; plain text is their chat.
		return
	}
	switch {
	case req.Help:
		b.reply(ctx, evt, nil, nil, helpText)
		return
	case req.Status:
		b.reply(ctx, evt, nil, nil, b.status(req, area, bridgeRoom))
		return
	}
	if err := b.permit(ctx, evt.RoomID, evt.Sender); err != nil {
		b.reply(ctx, evt, nil, err)
		return
	}
	if req.Confirm {
		b.confirm(ctx, evt)
		return
	}
	targets, err := resolve(req, b.opt.Registry.List(), area)
	if err != nil {
		if req.Explicit || bridgeRoom {
			b.reply(ctx, evt, nil, err)
		}
		return
	}
	b.execute(ctx, evt, targets, req.Cmd)
}

// commandContent is the org.hearth.device.command event (docs/devices.md).
type commandContent struct {
	Device  string          `json:"device"`
	Set     devices.Command `json:"set"`
	Confirm bool            `json:"confirm,omitempty"`
}

func (b *Bridge) handleStructured(ctx context.Context, evt *event.Event) {
	var c commandContent
	if err := json.Unmarshal(evt.Content.VeryRaw, &c); err != nil || c.Device == "" {
		b.reply(ctx, evt, nil, errors.New(`a device command needs {"device": "<id>", "set": {...}}`))
		return
	}
	if err := b.permit(ctx, evt.RoomID, evt.Sender); err != nil {
		b.reply(ctx, evt, nil, err)
		return
	}
	e, ok := b.opt.Registry.Get(c.Device)
	if !ok {
		b.reply(ctx, evt, nil, fmt.Errorf("no device %q", c.Device))
		return
	}
	if err := accepts(e.Device, c.Set); err != nil {
		b.reply(ctx, evt, nil, err)
		return
	}
	if c.Confirm && c.Set.Action != "" {
		b.run(ctx, evt, []devices.Entry{e}, confirmed(c.Set))
		return
	}
	b.execute(ctx, evt, []devices.Entry{e}, c.Set)
}

// execute runs a command on its targets, asking for confirmation first for a drone takeoff.
func (b *Bridge) execute(ctx context.Context, evt *event.Event, targets []devices.Entry, cmd devices.Command) {
	if cmd.Action == "takeoff" {
		ids := make([]string, len(targets))
		names := make([]string, len(targets))
		for i, t := range targets {
			ids[i], names[i] = t.Device.ID, t.Device.Name
		}
		b.confirmMu.Lock()
		b.confirms[confirmKey(evt)] = pendingConfirm{ids: ids, cmd: cmd, expires: time.Now().Add(b.opt.ConfirmTimeout)}
		b.confirmMu.Unlock()
		b.reply(ctx, evt, nil, nil, fmt.Sprintf("Take off %s? Reply \"confirm\" within %s.", strings.Join(names, ", "), b.opt.ConfirmTimeout))
		return
	}
	b.run(ctx, evt, targets, cmd)
}

func confirmKey(evt *event.Event) string { return evt.RoomID.String() + "|" + evt.Sender.String() }

func (b *Bridge) confirm(ctx context.Context, evt *event.Event) {
	b.confirmMu.Lock()
	p, ok := b.confirms[confirmKey(evt)]
	delete(b.confirms, confirmKey(evt))
	b.confirmMu.Unlock()
	if !ok || time.Now().After(p.expires) {
		b.reply(ctx, evt, nil, errors.New("there is nothing to confirm"))
		return
	}
	var targets []devices.Entry
	for _, devID := range p.ids {
		if e, ok := b.opt.Registry.Get(devID); ok {
			targets = append(targets, e)
		}
	}
	if len(targets) == 0 {
		b.reply(ctx, evt, nil, errors.New("the device is gone"))
		return
	}
	b.run(ctx, evt, targets, confirmed(p.cmd))
}

// confirmed marks an action as confirmed by the user with the adapter-neutral trailing "!"
// ("takeoff!"); adapters that ask for confirmation (the drone) carry out only such actions.
func confirmed(c devices.Command) devices.Command {
	if c.Action != "" && !strings.HasSuffix(c.Action, "!") {
		c.Action += "!"
	}
	return c
}

// confirmPrompter is what an adapter's error offers when the action needs the user's yes
// (drone.ConfirmError); found with errors.As so the bridge imports no adapter.
type confirmPrompter interface {
	error
	ConfirmPrompt() string
}

// run sends the command to every target and replies with the outcome.
func (b *Bridge) run(ctx context.Context, evt *event.Event, targets []devices.Entry, cmd devices.Command) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	var ok, failed []string
	var errs []error
	for _, t := range targets {
		err := b.opt.Registry.Command(ctx, t.Device.ID, cmd)
		if cp, ok := errors.AsType[confirmPrompter](err); ok && len(targets) == 1 {
			// The adapter wants a yes for this action: ask, as for a takeoff.
			b.confirmMu.Lock()
			b.confirms[confirmKey(evt)] = pendingConfirm{ids: []string{t.Device.ID}, cmd: cmd, expires: time.Now().Add(b.opt.ConfirmTimeout)}
			b.confirmMu.Unlock()
			b.reply(ctx, evt, nil, nil, cp.ConfirmPrompt()+" Reply \"confirm\" within "+b.opt.ConfirmTimeout.String()+".")
			return
		}
		if err != nil {
			failed = append(failed, t.Device.ID)
			errs = append(errs, fmt.Errorf("%s: %w", t.Device.Name, err))
			continue
		}
		ok = append(ok, t.Device.ID)
	}
	var names []string
	for _, t := range targets {
		if !contains(failed, t.Device.ID) {
			names = append(names, t.Device.Name)
		}
	}
	result := map[string]any{"ok": len(failed) == 0, "devices": ok, "set": cmd}
	if len(failed) > 0 {
		result["failed"] = failed
	}
	text := ""
	if len(ok) > 0 {
		text = "✓ " + strings.Join(names, ", ") + ": " + describeCommand(cmd)
	}
	b.reply(ctx, evt, result, errors.Join(errs...), text)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// status lists the devices of the room's area (all of them with "status all" or outside the
// bridge's rooms).
func (b *Bridge) status(req Request, area string, bridgeRoom bool) string {
	var lines []string
	all := !bridgeRoom || contains(req.Words, "all") || (len(req.Words) > 0 && req.Words[0] == "everything")
	for _, e := range b.opt.Registry.List() {
		if !all && areaKey(e.Device.Area) != area {
			continue
		}
		if len(req.Words) > 0 && !all {
			if _, ok := matchScore(req.Words, deviceWords(e.Device)); !ok {
				continue
			}
		}
		lines = append(lines, "• "+describe(e.Device, e.State))
	}
	if len(lines) == 0 {
		return "No devices here."
	}
	return strings.Join(lines, "\n")
}

// reply answers a command in a thread on it: the text, then the error if any. result is the
// structured outcome (org.hearth.device.result).
func (b *Bridge) reply(ctx context.Context, evt *event.Event, result map[string]any, err error, text ...string) {
	body := strings.Join(text, "\n")
	if err != nil {
		if body != "" {
			body += "\n"
		}
		body += "✗ " + err.Error()
		if result == nil {
			result = map[string]any{"ok": false}
		}
		result["error"] = err.Error()
	}
	root := evt.ID
	if rel := evt.Content.AsMessage().RelatesTo; evt.Type == event.EventMessage && rel != nil && rel.Type == event.RelThread && rel.EventID != "" {
		root = rel.EventID
	}
	content := map[string]any{
		"msgtype": "m.notice",
		"body":    body,
		"m.relates_to": map[string]any{
			"rel_type":        "m.thread",
			"event_id":        root,
			"is_falling_back": true,
			"m.in_reply_to":   map[string]any{"event_id": evt.ID},
		},
	}
	if result != nil {
		content[ResultField] = result
	}
	if _, serr := b.sendMessage(ctx, evt.RoomID, nil, event.EventMessage, content); serr != nil {
		b.log.Warn("device bridge: reply", "room", evt.RoomID, "err", serr)
	}
}
