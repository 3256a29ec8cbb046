// Package appservice is the homeserver side of the Application Service API: registrations
// loaded from YAML files (mautrix's appservice.Registration), namespaces (users, aliases,
// rooms; exclusive or shared), as_token authentication with masquerading, transactions pushed
// in stream order with retries and backoff from a persisted position, /ping and user queries.
//
// One worker per application service reads the store from its persisted position up to the
// stream watermark (woken by the change bus), picks the events the service is interested in
// (sender, state key, room ID, room alias, or a namespace member joined to the room) and PUTs
// them as one transaction. The position and the next transaction ID are written only after the
// service acknowledged; a failed transaction is retried with the same ID and the same events.
package appservice
