// Package accounts owns local users, their devices and access tokens, passwords, profiles,
// account data, filters, registration tokens and user-interactive authentication sessions.
// Access tokens are stored only as SHA-256 hashes.
package accounts
