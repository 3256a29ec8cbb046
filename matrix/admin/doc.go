// Package admin is the server administration domain behind the Synapse-compatible admin API
// (/_synapse/admin/...): user listing, creation and modification, deactivation, password
// resets, room listing, details, members and deletion, registration tokens, media (list,
// delete, quarantine; media.go) and purging room history (purge.go). It composes the accounts,
// rooms and media services; the HTTP shapes live in matrix/clientapi/admin.go and
// admin_media.go; server notices (notices.go) are sent by matrix/servernotices.
package admin
