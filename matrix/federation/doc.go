// Package federation is the federation core: the incoming event pipeline (checks on receipt
// of a PDU, fetching missing auth and prev events, state at an event) and the joins, leaves,
// knocks and invites this server makes on other servers. It sits between the HTTP layers and
// the room domain (matrix/rooms) and is written by the integrator. Incoming EDUs (edu.go) each
// speak only for users of their origin: typing and receipts go to the sync service, presence
// to its presence table (when presence is on), to-device messages to the keys service's
// inboxes, device-list and signing-key updates to the keys service's remote device cache.
//
// Sub-packages, one job each:
//   - keyring: remote servers' signing keys (fetch, cache, notaries), /_matrix/key/v2/*,
//     X-Matrix request authentication (the "xmatrix.origin" echo key), PDU signature and hash
//     checks (VerifyEvent), server discovery and the outbound mautrix client with its TLS
//     roots.
//   - sender: persistent per-destination queues that deliver PDUs and EDUs in transactions,
//     with backoff.
//   - fedapi: the inbound /_matrix/federation/* endpoints that read this server's data.
package federation
