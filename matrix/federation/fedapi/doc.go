// Package fedapi serves the inbound federation API (/_matrix/federation/*) that reads this
// server's data: the version, events, state and auth chains, backfill and missing events,
// queries (profile, directory), user devices and keys, the published room directory, the
// space hierarchy, jump to date (timestamp_to_event), OpenID user info and media. One file per API area, like matrix/clientapi.
//
// The package does not verify X-Matrix signatures: the authentication middleware passed in
// Deps.Auth does, and stores the requesting server's name under OriginKey in the echo
// context. Handlers read it with Origin. Writing endpoints (send, joins, leaves, invites,
// knocks) live in this package too but are registered by the integrator on the same group;
// Errors renders any merr error of theirs as Matrix JSON.
package fedapi
