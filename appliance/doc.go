// Package appliance is Hearth's composition root: it builds every subsystem from the
// configuration, starts and stops them in order, owns signals, health and the control socket.
// No package below it imports it.
package appliance
