package events

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// AuthorizeLocal is Authorize for events this server builds and signs itself. The auth rules
// check one signature themselves: a restricted join's join_authorised_via_users_server must be
// signed by the authorising user's server (rule 4.2 of v8+), which for a local authoriser is
// this server, so its own key is offered. Other servers' keys stay unknown (federation).
func AuthorizeLocal(rv id.RoomVersion, p *pdu.PDU, getEvents eventauth.GetEventsFunc, s Signer) error {
	err := AuthorizeEvent(rv, p, nil, getEvents, s.ownKey)
	if err == nil {
		return nil
	}
	if errors.Is(err, eventauth.ErrCreatorInPowerLevels) {
		// A client asking for something the room version forbids outright is a bad
		// request, not a permission problem (room v12, MSC4289).
		return merr.BadJSON("room creators must not be listed in power levels: %s", humanAuthMessage(err))
	}
	if errors.Is(err, ErrMalformedOwnedStateKey) {
		// MSC3757: a key that merely looks like a user ID is a malformed request.
		return merr.BadJSON("%s", humanAuthMessage(err))
	}
	var afe eventauth.AuthFailError
	if errors.As(err, &afe) {
		return merr.Forbidden("event not authorised (auth rule %s): %s", afe.Index, humanAuthMessage(err))
	}
	return fmt.Errorf("authorise event: %w", err)
}

// ownKey answers key lookups for this server's signing key only.
func (s Signer) ownKey(serverName string, keyID id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
	if serverName != s.ServerName || keyID != s.KeyID || len(s.Key) != ed25519.PrivateKeySize {
		return "", time.Time{}, fmt.Errorf("no key %s for %s", keyID, serverName)
	}
	pub := s.Key.Public().(ed25519.PublicKey)
	// The key is this server's own and current: valid for as long as anyone asks.
	return id.SigningKey(base64.RawStdEncoding.EncodeToString(pub)), time.Now().Add(24 * time.Hour), nil
}
