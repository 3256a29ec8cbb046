package keys

import (
	"encoding/json"
	"fmt"

	"maunium.net/go/mautrix/id"
)

// sendRemoteToDevice hands the messages for users of other servers to the federation sender.
// Only a local sender's messages leave: a message that arrived over federation is never
// relayed to a third server. It runs after the local commit and only for a transaction ID
// not seen before, so a retried request does not send twice; the sender has committed the
// messages to its queue when it returns.
func (s *Service) sendRemoteToDevice(sender id.UserID, senderDevice, evType, txnID string, messages map[string]map[string]json.RawMessage) error {
	if !s.isLocal(sender.String()) {
		return nil
	}
	remote := map[string]map[string]json.RawMessage{}
	for u, devs := range messages {
		if !s.isLocal(u) && id.UserID(u).Homeserver() != "" && len(devs) > 0 {
			remote[u] = devs
		}
	}
	if len(remote) == 0 {
		return nil
	}
	if s.remote == nil || s.remote.o.ToDevice == nil {
		s.log.Debug("to-device messages for remote users dropped: federation is off", "users", len(remote))
		return nil
	}
	// The message ID must be unique per sender; the client's transaction ID is unique per
	// device and event type only.
	msgID := senderDevice + "." + evType + "." + txnID
	if err := s.remote.o.ToDevice.SendToDevice(sender.String(), evType, msgID, remote); err != nil {
		return fmt.Errorf("queue to-device messages for other servers: %w", err)
	}
	return nil
}
