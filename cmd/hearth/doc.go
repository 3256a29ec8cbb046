// Command hearth is the appliance's single binary: `hearth serve` runs the homeserver, and the
// administration commands (user, token, config, healthcheck) work whether or not it runs, by
// talking to the control socket when a server answers and opening the store directly otherwise.
//
// Everything the commands touch outside the process (standard streams, the environment, the
// terminal, the socket, the store, the network) arrives through one deps value, so the tests
// run every command without globals, a terminal or a real server.
package main
