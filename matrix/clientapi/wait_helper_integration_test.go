package clientapi_test

import "time"

// waitABit lets an asynchronous consumer of the bus (push, search) catch up.
func waitABit() { time.Sleep(20 * time.Millisecond) }
