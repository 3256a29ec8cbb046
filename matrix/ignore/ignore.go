package ignore

import (
	"encoding/json"
	"errors"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// EventType is the account-data type holding the list.
const EventType = "m.ignored_user_list"

// Set is the users one user ignores. The nil Set ignores nobody.
type Set map[string]struct{}

// Has reports whether user is ignored.
func (s Set) Has(user string) bool {
	if len(s) == 0 {
		return false
	}
	_, ok := s[user]
	return ok
}

// Hides reports whether an event with this sender is hidden from the owner of the set:
// events of ignored users are, except state events.
func (s Set) Hides(sender string, isState bool) bool { return !isState && s.Has(sender) }

// Validate checks a new m.ignored_user_list for owner: an object whose ignored_users is an
// object mapping user IDs to objects (M_BAD_JSON otherwise); a user cannot ignore themselves
// (M_INVALID_PARAM).
func Validate(owner id.UserID, content json.RawMessage) error {
	var c struct {
		IgnoredUsers *map[string]json.RawMessage `json:"ignored_users"`
	}
	if err := json.Unmarshal(content, &c); err != nil || c.IgnoredUsers == nil || *c.IgnoredUsers == nil {
		return merr.BadJSON("m.ignored_user_list needs ignored_users: an object of user IDs")
	}
	for u, v := range *c.IgnoredUsers {
		if _, _, err := id.UserID(u).Parse(); err != nil || !strings.HasPrefix(u, "@") {
			return merr.BadJSON("ignored_users: %q is not a user ID", u)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil || obj == nil {
			return merr.BadJSON("ignored_users: the value for %s must be an object", u)
		}
		if u == owner.String() {
			return merr.InvalidParam("you cannot ignore yourself")
		}
	}
	return nil
}

// Parse reads the set from the account-data content; malformed content ignores nobody.
func Parse(content json.RawMessage) Set {
	var c struct {
		IgnoredUsers map[string]json.RawMessage `json:"ignored_users"`
	}
	if json.Unmarshal(content, &c) != nil || len(c.IgnoredUsers) == 0 {
		return nil
	}
	s := make(Set, len(c.IgnoredUsers))
	for u := range c.IgnoredUsers {
		s[u] = struct{}{}
	}
	return s
}

// Load reads user's ignore list inside a transaction (nil when there is none).
func Load(txn *store.Txn, user string) (Set, error) {
	rec, err := txn.AccountData(user, 0, EventType)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return Parse(rec.Content), nil
}
