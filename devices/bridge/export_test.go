package bridge

import (
	"context"

	"maunium.net/go/mautrix/event"
)

// HandleEvent feeds one event to the bridge as if a transaction had delivered it. Tests use it
// for what the homeserver cannot produce without federation: an event from a remote user.
func (b *Bridge) HandleEvent(ctx context.Context, evt *event.Event) { b.handleEvent(ctx, evt) }
