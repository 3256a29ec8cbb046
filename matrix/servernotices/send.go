package servernotices

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/json/jsontext"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// Notice is one server notice to send.
type Notice struct {
	User     string          // recipient, a local user ID
	Type     string          // event type; empty means m.room.message
	StateKey *string         // set: the notice is a state event
	Content  json.RawMessage // event content, a JSON object

	// Idempotency (the PUT form): a retried request with the same transaction ID from the same
	// admin device answers the first event ID and changes nothing. Empty TxnID: no dedup.
	TxnUser   id.UserID
	TxnDevice string
	TxnID     string
}

// txnScope keeps the admin endpoint's transaction IDs apart from the room endpoints' ones,
// which share the store's per-device transaction table (room scopes start with "!").
const txnScope = "/_synapse/admin/v1/send_server_notice\x00"

// Send delivers a notice: it finds or makes the recipient's notices room, invites the
// recipient again if they left, and sends the event as the system user.
func (s *Service) Send(ctx context.Context, n Notice) (id.EventID, error) {
	if !s.Enabled() {
		return "", merr.Unknown("server notices are not enabled on this server")
	}
	user, err := s.recipient(ctx, n.User)
	if err != nil {
		return "", err
	}
	typ := n.Type
	if typ == "" {
		typ = "m.room.message"
	}
	if c := bytes.TrimSpace(n.Content); len(c) == 0 || c[0] != '{' || !json.Valid(c) {
		return "", merr.BadJSON("content must be a JSON object")
	}
	if n.TxnID != "" {
		if prev, err := s.txnEvent(n); err != nil || prev != "" {
			return prev, err
		}
	}
	if err := s.ensureSystemUser(ctx); err != nil {
		return "", err
	}
	unlock := s.lockUser(user)
	defer unlock()
	roomID, err := s.roomFor(ctx, user)
	if err != nil {
		return "", err
	}
	opts := rooms.SendOpts{}
	if n.TxnID != "" {
		// Also deduplicated inside the room's own transaction, so that the send itself is
		// idempotent even if the admin-scope record below were lost to a crash.
		opts = rooms.SendOpts{Device: n.TxnUser.String() + " " + n.TxnDevice, TxnID: n.TxnID}
	}
	ap, err := s.rooms.Send(ctx, roomID, events.Template{Type: typ, StateKey: n.StateKey, Sender: s.system, Content: jsontext.Value(n.Content)}, opts)
	if err != nil {
		return "", fmt.Errorf("server notices: send to %s in %s: %w", user, roomID, err)
	}
	if n.TxnID != "" {
		if err := s.st.Update(func(txn *store.Txn) error {
			return txn.PutTxn(n.TxnUser.String(), n.TxnDevice, txnScope+n.TxnID, ap.EventID.String())
		}); err != nil {
			return "", fmt.Errorf("server notices: record transaction %q: %w", n.TxnID, err)
		}
	}
	return ap.EventID, nil
}

// recipient checks that a notice can go to user: a local, existing account other than the
// system user.
func (s *Service) recipient(ctx context.Context, user string) (id.UserID, error) {
	if user == "" {
		return "", merr.MissingParam("user_id is required")
	}
	uid := id.UserID(user)
	lp, hs, err := uid.ParseAndValidateRelaxed()
	if err != nil || user[0] != '@' {
		return "", merr.InvalidParam("%q is not a valid user ID", user)
	}
	if hs != s.acc.ServerName() {
		return "", merr.InvalidParam("server notices can only be sent to local users")
	}
	if uid == s.system {
		return "", merr.InvalidParam("server notices cannot be sent to the server notices user")
	}
	if _, err := s.acc.User(ctx, lp); err != nil {
		if isNotFound(err) {
			return "", merr.NotFound("user %s not found", user)
		}
		return "", fmt.Errorf("server notices: load recipient %s: %w", user, err)
	}
	return uid, nil
}

// txnEvent returns the event an earlier request with the same transaction ID sent, or "".
func (s *Service) txnEvent(n Notice) (id.EventID, error) {
	var prev string
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		prev, err = txn.TxnEvent(n.TxnUser.String(), n.TxnDevice, txnScope+n.TxnID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("server notices: look up transaction %q: %w", n.TxnID, err)
	}
	return id.EventID(prev), nil
}
