// Package drone is the devices.Adapter for a DJI/Ryze Tello, spoken to with the Tello SDK 2.0
// text protocol over UDP: commands go to the drone (192.168.10.1:8889), each answered by "ok",
// "error ..." or, for a query ("battery?"), its value; once in SDK mode ("command") the drone
// streams its state ("pitch:0;roll:0;...;bat:87;h:0;...") to UDP port 8890, which becomes the
// device's Readings.
//
// One command is in flight at a time, since replies carry no correlation. A move is answered
// when it ends, so commands wait up to CommandTimeout; queries wait QueryTimeout and are sent
// once more if unanswered, being idempotent. Moves are never repeated: a lost reply does not
// prove the move was lost. "emergency" (stop the motors) never waits behind another command:
// it is sent at once even while a move is awaiting its reply.
//
// Confirmation: taking off from a chat message is not something to do by accident, so
// Command with Action "takeoff" returns a *ConfirmError (errors.Is ErrNeedsConfirm) carrying
// a prompt for the user. The caller asks, and on a yes sends the command again as Confirm(c),
// which marks the action confirmed with a trailing "!" ("takeoff!"). The "!" convention is
// adapter-neutral: any action may carry it, and only actions that need it look at it.
//
// While Run is alive the adapter keeps the link up with a query every KeepAlive (the drone
// lands by itself after 15 s without commands); if Hearth stops, that built-in safety landing
// happens.
package drone
