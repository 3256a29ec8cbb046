// Package bus is the typed, in-process publish/subscribe between the domain and its consumers
// (sync notifier, federation sender, pushers, application services, the device bridge).
//
// Ordering contract: Publish is called only after the change it announces has committed and is
// visible to readers (the store's watermark has passed it). Every subscriber receives messages in
// publish order. Delivery to a subscriber is synchronous with Publish for fast, non-blocking
// handlers (the notifier); slow consumers subscribe with a buffered queue and must never block
// the publisher: a full queue marks the subscriber lagged, and it catches up by reading the store
// from its last position.
package bus
