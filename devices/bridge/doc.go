// Package bridge is the Matrix side of the device bridge: it makes the devices in a
// devices.Registry members of Matrix rooms and turns messages in those rooms into commands.
//
// The bridge is an application service. It runs inside the appliance but talks to the
// homeserver only through the Application Service API: the appliance registers it with a
// mautrix appservice.Registration (exclusive user namespace @_hearth_.*, a bot user, as_token
// and hs_token) exactly like a registration file would, the homeserver PUTs transactions to
// the bridge's loopback HTTP listener, and the bridge acts through the client-server API with
// its as_token, masquerading as a device's virtual user with ?user_id=. Nothing here touches the
// store except the bridge's own records (rooms it made, its crypto state).
//
// Layout: a "Home" space; one room per area (a child of the space) holding the area's
// devices as virtual users; devices without an area in a "Home" room. Each device's state is a
// state event org.hearth.device (state_key = device ID); a change is also posted as an
// m.notice with the structured org.hearth.device.reading field, at most once per MinInterval
// per device and only when a number moved by at least MinDelta (see gate.go). Commands are
// text ("kitchen light 50%", grammar.go) or the org.hearth.device.command event; replies go
// into a thread on the command. docs/devices.md documents the event schemas.
package bridge
