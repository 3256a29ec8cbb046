// Package invitefilter decides whether a local user accepts an invite from a given inviter,
// from two account-data events:
//
//   - m.invite_permission_config (spec v1.18, "Invite permission"): default_action "block"
//     refuses every invite; a missing, invalid or unknown value changes nothing.
//   - org.matrix.msc4155.invite_permission_config (MSC4155's unstable form): lists of globs
//     (* and ?, case-insensitive, anchored) in allowed_users, ignored_users, blocked_users
//     (matched against the inviter's full user ID) and allowed_servers, ignored_servers,
//     blocked_servers (matched against the inviter's server name, with or without its port).
//     User lists are consulted before server lists and, within each, allowed before ignored
//     before blocked: the first match decides. Entries that are not non-empty strings and
//     fields that are not lists (null included) are ignored.
//
// The verdict is Allow, Ignore (the invite is accepted but never shown in /sync) or Block
// (the invitee's server refuses it with 403 M_INVITE_BLOCKED, and one already stored is not
// shown either). The room service asks Check before it makes an invite of a local user and the
// federation Invite handler before it countersigns one; the sync builders ask Hides for each
// invite they would list. Nothing is cached: the account data is read in the caller's
// transaction, so a change takes effect on the next request and lifting a block shows the
// invites it hid again (as the spec allows).
package invitefilter
