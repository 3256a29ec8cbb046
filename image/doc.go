// Package image is the planned home of the appliance image build: it will assemble the SD-card
// image for Raspberry Pi-class boards around the static hearth binary and boot it in QEMU for its
// test. That part is not implemented yet.
//
// What exists today is the Complement container image definition under image/complement/
// (Containerfile and hearth.yaml), built with `make complement-image`; it holds no Go code.
package image
