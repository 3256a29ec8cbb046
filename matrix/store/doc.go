// Package store is Hearth's only persistence layer: a Badger key-value store tuned for small boards.
//
// Every key is built in keys.go, which holds the table of prefixes and the layout of each. Numbers
// inside keys are big-endian so that keys iterate in numeric order. The package knows nothing of
// Matrix semantics beyond the shapes of its records; the domain packages (rooms, accounts, sync)
// decide what to write and when.
//
// Ordering: one global stream counter orders everything a client can sync (events, account data,
// receipts). Positions are allocated before a transaction commits and released after, and the
// Stream type keeps a watermark: the highest position below which every allocated position has
// finished committing. Readers never look past the watermark, so a sync token can never skip a
// write that committed late.
package store
