// Package e2ee_test runs end-to-end encryption against a real Hearth with mautrix-go's crypto
// (the pure-Go goolm implementation): Olm sessions over /keys/claim and /sendToDevice, Megolm
// room keys, cross-signing, key backup and a new device restoring from it.
//
// mautrix's crypto package picks its Olm implementation with a build tag: without `goolm` it
// links libolm through cgo. The tests here therefore build only with `-tags goolm`; without
// it, guard_test.go fails so that the suite is never skipped silently.
package e2ee_test
