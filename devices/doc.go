// Package devices is the device model shared by the adapters (mqtt, hue, gpio, drone) and the
// Matrix side (bridge): what a device is, what state it reports and what a command asks of it.
// Adapters discover devices and report state into a Registry; the bridge reads the Registry and
// sends commands back through it. Nothing here knows about Matrix or about any one protocol.
package devices
