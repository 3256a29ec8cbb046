// Package delayed schedules delayed events (MSC4140, unstable prefix org.matrix.msc4140): a
// client asks for a message or state event to be sent into a room after a delay, and may
// cancel it, restart its timer, or have it sent at once. MatrixRTC uses this so that a call
// membership is cleared when a client vanishes: the client keeps restarting a delayed "leave"
// and, if it stops, the server sends it.
//
// Every scheduled event is a record in the store (prefixes 0x90-0x92), written before the
// client gets its delay_id, so a restart loses nothing: New loads the records and events whose
// time passed while the server was down are sent at once, oldest due first. The records are
// also kept in memory (bounded by Options.MaxPerUser per user) for the timer and the list.
//
// Delivery is at least once: the event is appended through the same domain API as a client's
// (rooms.Service.Send, auth checked at sending time) and the record is removed after. A crash
// between the two sends the event again at start-up, which for the state events MatrixRTC uses
// changes nothing. A failure at the scheduled time is logged and the event dropped (the MSC
// says not to retry); a failure of an explicit "send" keeps it scheduled and reports the error.
//
// A state event that another user sends to the same room, type and state key cancels the
// pending delayed state events there (Watch): their content would overwrite a newer decision.
package delayed
