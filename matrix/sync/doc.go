// Package sync is /sync: the notifier that parks long-polls and wakes them with positions (never
// data), typing (in memory, it is ephemeral by nature), receipts, and the response builder that
// reads the store up to the stream watermark.
//
// A sync token is "s<stream position>_<typing serial>". The typing serial is in-memory and
// restarts at zero with the process; a token carrying a larger serial than the server has is
// treated as "send all current typing".
package sync
