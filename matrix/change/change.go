// Package change defines what the domain announces on the bus after a commit: a stream position
// and enough about the change for consumers to decide whom it concerns. Never the data itself:
// consumers read the store up to the position.
package change

// Kind says what changed.
type Kind uint8

// Kinds of change.
const (
	Event       Kind = iota + 1 // a room event (Room, EventType, StateKey, Membership set)
	AccountData                 // a user's account data (User, Room may be set)
	Receipt                     // a receipt in a room (Room, User)
	Typing                      // typing in a room changed (Room); Pos is the typing serial
	Membership                  // a membership-index change that is not an event (forget) (User, Room)
	Devices                     // a user's devices changed (User)
	ToDevice                    // a to-device message for a user (User; Device names the device or "*")
	DeviceKeys                  // a user's device or cross-signing keys changed (User)
	Presence                    // a user's presence changed (User)
)

// Change is one announcement.
type Change struct {
	Pos        uint64
	Kind       Kind
	Room       uint64
	RoomID     string
	User       string
	EventID    string
	EventType  string
	StateKey   *string
	Membership string // for m.room.member events: the new membership of StateKey
	Sender     string
	Device     string
}
