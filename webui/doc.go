// Package webui is the planned browser interface of the appliance: a first-boot setup wizard
// (server name, administrator account, TLS) and a dashboard (health, users, devices, storage), its
// assets built into the binary with embed so that the appliance needs no files beside it.
// Nothing is implemented yet; this package only reserves its place in the layout.
package webui
