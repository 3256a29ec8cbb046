// Package search is server-side search over room events (POST /search, room_events).
//
// The index is an inverted index in Badger: one key per (token, event position) under the
// store's search prefix, holding the room NID, the field (body, name, topic) and how often the
// token occurred. Tokens are lower-cased Unicode words (letters and digits). An indexer
// goroutine, woken by the change bus, reads new events from the store up to the stream
// watermark and writes their postings in batches, together with a high-water position, so a
// restart or a lagged bus subscription simply resumes from the high-water mark. A search first
// brings the index up to the current watermark (cheap when it is current), then intersects
// the postings of the query's terms (each term also matches as a prefix), keeps the rooms the
// user is joined to, ranks by term frequency (exact matches count double), and checks history
// visibility per event with rooms.Viewer.
package search
