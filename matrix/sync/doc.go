// Package sync is /sync: the notifier that parks long-polls and wakes them with positions (never
// data), typing (in memory, it is ephemeral by nature), receipts, and the response builder that
// reads the store up to the stream watermark. A parked long-poll whose build found nothing
// reads only what arrived after that build on its next wake-up, and a build reads everything,
// unread counts included, in one store transaction (each new one waits for the commits in flight).
//
// A sync token is "s<stream position>_<typing serial>_<presence serial>". The typing and
// presence serials are in-memory and restart at zero with the process; a token carrying a
// larger serial than the server has is treated as "send all current typing" (or presence).
// Tokens without the presence part (older servers) read it as 0.
//
// Simplified Sliding Sync (MSC4186, what Element X speaks) is in sliding*.go: lists, room
// subscriptions and extensions over the same store reads, with per-connection state kept in
// memory and bounded (sliding_conn.go); a "pos" names one response of one connection. Its
// parked long-polls too read only what is new on each wake-up (sliding_wake.go).
package sync
