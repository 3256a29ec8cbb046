// Package sender delivers PDUs and EDUs to other homeservers: one persisted queue per
// destination, one goroutine per destination with pending work, and the producers of the
// EDUs that local activity causes.
//
// Queues. Enqueue writes everything it is given in one store transaction (a PDU once, with a
// reference from each destination's queue; keys in matrix/store/fedqueue.go) before it wakes
// the destinations, so a queued item survives a crash. A worker takes the head of its queue,
// at most 50 PDUs and 100 EDUs and never skipping an entry that does not fit (queue order is
// kept across transactions; inside one transaction PDUs and EDUs are separate arrays), and
// records the transaction's ID and entries before sending it. A failed send is retried with
// the same ID and the same content, also after a restart, so a receiver that did apply it
// (and whose 200 was lost) answers from its transaction cache instead of applying it twice.
// Entries are deleted only after a 200; per-PDU errors in that answer are final and logged.
//
// Backoff is per destination: the base delay doubles per consecutive failure up to a cap,
// with jitter from the upper half of the interval. MarkAlive (the destination contacted us)
// ends a backoff at once. Close lets in-flight sends finish for a grace period, then cancels
// them and waits for every worker goroutine.
//
// Ephemeral EDUs (m.typing, m.presence) never touch the store: they ride along in the next
// transaction, are dropped while their destination is failing, and are lost on restart. After
// a restart the in-flight transaction is resent under its ID without them; receivers key
// idempotency on the ID, and stale typing or presence is not worth more.
//
// EDUs. The builders (Typing, Receipts, Presence, DeviceList, SigningKeyUpdate,
// DirectToDevice) produce the server-server API's EDU contents from plain values and reject
// malformed input. Producer consumes change.Change values from the bus (Handle never blocks;
// repeats coalesce, since each EDU is built from the state when it is handled) and queues
// EDUs for the servers in the room or sharing a room with the user, through small lookup
// interfaces the composition root implements. A local user's join also re-announces their
// devices to the room's servers that share no other room with them (producer_join.go), as the
// spec asks. To-device messages for remote users come from
// the request path instead (Producer.SendToDevice), because they have no local record.
package sender
