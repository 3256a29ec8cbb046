// Package devices is the planned device bridge: it will make the house's devices members of
// Matrix rooms. Sensors post readings as room events and commands typed in a room drive actuators,
// with adapters for MQTT, Philips Hue, GPIO pins, drones and cameras, each device appearing as a
// virtual user. The bridge will be an application service that runs in-process, using the same
// appservice interface as external bridges, and will change rooms only through the domain API.
// Nothing is implemented yet; this package only reserves its place in the layout.
package devices
