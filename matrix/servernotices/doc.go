// Package servernotices sends server notices, the Synapse feature behind the admin API's
// POST /_synapse/admin/v1/send_server_notice (and the PUT form with a transaction ID) and the
// spec's "Server Notices" module.
//
// A configured system user (server_notices.system_mxid_localpart, a local account without a
// password so nobody can log in as it) owns one private room per recipient. The room is made on
// the first notice: invite-only, the system user joined, the recipient invited and tagged
// m.server_notice in the recipient's room account data, users_default -10 so that the
// recipient can neither speak, invite nor change state in it. Later notices go to the same
// room; a recipient who left is invited again. The room is found again by scanning the rooms
// the system user is joined to (it joins nothing else: inviting it is refused), so no index has
// to be kept in step with the rooms.
//
// The package is also a rooms.MembershipGuard: a recipient cannot reject the invite
// (403 M_CANNOT_LEAVE_SERVER_NOTICE_ROOM; after joining, leaving is allowed, as on Synapse),
// and nobody may invite the system user anywhere.
package servernotices
