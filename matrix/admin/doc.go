// Package admin is the server administration domain behind the Synapse-compatible admin API
// (/_synapse/admin/...): user listing, creation and modification, deactivation, password
// resets, room listing, details, members and deletion, and registration tokens. It composes
// the accounts and rooms services; the HTTP shapes live in matrix/clientapi/admin.go.
package admin
