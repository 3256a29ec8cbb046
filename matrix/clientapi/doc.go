// Package clientapi is the Matrix Client-Server API over echo: one file per API area, thin
// handlers that parse, call a domain service and render. Errors are *merr.Error values turned
// into responses in exactly one place (errors.go).
package clientapi
