// Package control is the control socket: a Unix socket in the data directory (mode 0600) through
// which the `hearth` command line administers a running server. The same Admin interface is
// served over the socket and used directly on the store when no server runs.
package control
