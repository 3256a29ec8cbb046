// Package events builds, signs, authorises and redacts PDUs, and turns them into the client
// format. It is pure: no storage, no network. Hashing, signing, redaction and the auth rules come
// from mautrix's federation/pdu and federation/eventauth; this package adds what Hearth needs
// around them (templates, size limits, the client event shape, spec-indexed errors).
package events
