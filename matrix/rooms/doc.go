// Package rooms is the room domain: creating rooms, appending events (authorised, signed,
// stored with their state snapshot), membership, aliases and the read side of rooms (state,
// timeline, visibility). Appends to one room are serialised by a striped lock; different rooms
// proceed in parallel and share Badger's group commit.
//
// State is stored as snapshots with deltas (store.Snapshot): every state event makes a new
// snapshot holding only what it changed, and every 16th is written in full so that resolving
// one never walks a long chain. The current state of each room is also indexed directly
// (store current-state keys) for the hot lookups: auth events, membership checks, /state.
package rooms
