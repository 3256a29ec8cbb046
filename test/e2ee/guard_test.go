//go:build !goolm

package e2ee_test

import "testing"

func TestNeedsGoolmTag(t *testing.T) {
	t.Fatal("the E2EE integration tests need the pure-Go Olm: run go test with -tags goolm")
}
