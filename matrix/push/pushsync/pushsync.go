// Package pushsync puts the user's push rules into an initial /sync as m.push_rules account
// data when the user has never changed them (and so no account data was ever written): clients
// read their ruleset from there. It is its own package because matrix/sync imports the client
// API, which imports matrix/push.
package pushsync

import (
	"context"
	"errors"
	"fmt"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/push"
	"github.com/hearth-home/hearth/matrix/store"
	"github.com/hearth-home/hearth/matrix/sync"
)

// Contributor implements sync.Contributor.
type Contributor struct{ push *push.Service }

// New makes the contributor.
func New(p *push.Service) *Contributor { return &Contributor{push: p} }

type accountDataEvent struct {
	Type    string `json:"type"`
	Content any    `json:"content"`
}

// Contribute adds the default ruleset to an initial sync that carries no m.push_rules.
func (c *Contributor) Contribute(txn *store.Txn, sess *accounts.Session, w sync.Window, resp *sync.Response) error {
	if !w.Initial {
		return nil
	}
	if _, err := txn.AccountData(sess.User.String(), 0, "m.push_rules"); err == nil {
		return nil // stored, so the sync already carries it
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	rs, err := c.push.Rules(context.Background(), sess.User)
	if err != nil {
		return fmt.Errorf("push rules for sync: %w", err)
	}
	resp.AccountData.Events = append(resp.AccountData.Events, accountDataEvent{Type: "m.push_rules", Content: map[string]any{"global": rs}})
	return nil
}
