// Package keys is the server side of end-to-end encryption: device identity keys, one-time and
// fallback keys (upload, query, claim), the device-list change stream (/keys/changes and the
// device_lists section of /sync), cross-signing keys and signatures, send-to-device messaging
// and server-side key backups.
//
// The server never sees plaintext: it stores what clients upload, hands it out to the clients
// allowed to see it, and keeps the counters (one-time-key counts, backup etag and count) that
// the protocol defines. Signatures are checked where the spec makes the server responsible
// (cross-signing keys signed by the master key, /keys/signatures/upload, a device's
// self-signature when present).
//
// Storage is in matrix/store (e2ee.go); every write is one transaction that, when other users
// must hear of it, allocates a stream position and attaches a change.Change note: DeviceKeys
// for a user's device or cross-signing keys, ToDevice for a queued message. The sync notifier
// routes those to the right long-polls. The keysync sub-package plugs the per-device sync
// sections (to_device, device_lists, device_one_time_keys_count,
// device_unused_fallback_key_types) into /sync as a sync.Contributor; it is a separate package
// because matrix/sync imports matrix/clientapi, which imports this package.
//
// Choices worth knowing:
//
//   - A device's to-device inbox holds at most MaxInbox messages; beyond that the oldest are
//     dropped (a device that never syncs again must not make every sender fail). Messages are
//     delivered in (since, upto] and deleted once a later sync presents a since token at or
//     beyond their position, which is the spec's acknowledgement. All pending messages of the
//     window are delivered at once (at most MaxInbox), because the sync token cannot express a
//     partial delivery.
//   - device_lists.changed/left are computed at sync time from the device-list change stream
//     and the membership events in the window of the user's rooms; rooms count whether or not
//     they are encrypted (the spec allows this approximation). A room with more than
//     memberScanLimit events in the window reports all its joined members as changed.
//   - Users of other servers (remote.go, remote_query.go; on once the appliance calls
//     EnableRemote): /keys/query asks their servers (federation /user/keys/query, one request
//     per server in parallel, each bounded by a timeout; a failed server goes in `failures`)
//     unless a fresh cached device list answers; /keys/claim asks /user/keys/claim. The cache
//     is memory only, bounded (MaxUsers) and aged (TTL). m.device_list_update EDUs update it in
//     place when their prev_id is the cached stream ID, else mark it stale and refetch the
//     whole list with /user/devices in the background; every update (and m.signing_key_update)
//     is written to the device-list change stream, so local users sharing a room see the
//     remote user in device_lists.changed and /keys/changes. A remote user has no membership
//     index, so "shares a room" reads their member event in the state of the rooms a local
//     user is joined to. A list is cached only while such a room exists, and dropped when the
//     owner's membership changes or our last shared room is left (remote_track.go): without
//     a shared room the owner's server stops sending updates, so a kept list would go stale.
//   - A user who joins a room is listed in their own device_lists.changed, beside the members
//     they now share a room with (as Synapse does).
//   - To-device messages for remote users go to the federation sender after the local commit,
//     once per transaction ID; messages that came from another server are never relayed.
//   - Deleting a device (the accounts service) removes its E2EE records asynchronously: Watch
//     consumes change.Devices from the bus and cleans up; queries already ignore keys of
//     devices that no longer exist.
package keys
