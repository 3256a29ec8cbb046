// Package hue is the devices.Adapter for a Philips Hue bridge, spoken to over its local CLIP v2
// API (HTTPS, JSON under /clip/v2/resource, server-sent events under /eventstream/clip/v2).
//
// Life cycle: Discover finds bridges by mDNS (_hue._tcp); Pair asks the user to press the
// bridge's link button, polls POST /api until the bridge hands out an application key and
// returns Credentials (address, key, SHA-256 fingerprint of the bridge certificate); the caller
// stores them and later builds the adapter with New. Run lists lights, rooms, devices and scenes,
// announces them to the sink and keeps their state current from the event stream, reconnecting
// (and re-listing, since events may have been missed) whenever the stream drops.
//
// Mapping: a Hue light is a devices.Light "hue:<light id>" whose Area is the name of the room
// that holds its Hue device; a Hue scene is a devices.Switch "hue:scene:<scene id>" whose On
// state is "the scene is active" and which is recalled by turning it on (or Action "recall").
//
// Trust: the bridge serves a certificate signed by Signify's private root (older bridges: self
// signed) whose subject is the bridge ID, not its address, so ordinary verification cannot
// succeed. Instead the certificate seen while pairing is pinned by fingerprint (trust on first
// use, at a moment the user proves physical access by pressing the button) and every later
// connection must present exactly that certificate; anything else is refused, so a host that
// takes over the bridge's address on the LAN never sees the application key.
package hue
