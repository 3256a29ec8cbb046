// Package keyring is the trust layer of federation: whose keys are whose, who sent a request,
// which events are really signed, and where a server name lives.
//
//   - Keyring fetches and caches remote servers' signing keys (directly, then through the
//     configured notaries), answers VerifyKey and VerifyEvent (the signature and hash checks
//     on receipt of a PDU), and serves /_matrix/key/v2/* including notary queries.
//   - Middleware authenticates inbound federation requests by their X-Matrix Authorization
//     header and records the origin under the echo key "xmatrix.origin" (see Origin).
//   - Resolver implements server discovery ("Resolving server names") with a Badger cache;
//     NewClient builds the outbound mautrix federation.Client on top of it.
//
// mautrix's federation package supplies the types, request signing, key response parsing,
// PDU redaction and canonical JSON. Where its helpers depart from the spec (well-known cache
// times, SRV target fallback, key responses trusted without checking server_name, a single
// Authorization header, key validity not capped at 7 days) this package replaces the part and
// says why beside the code. Everything cached lives in the store under the keyring prefixes
// (0x70-0x73); losing it only costs refetches.
package keyring
