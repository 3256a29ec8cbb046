package appliance

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"maunium.net/go/mautrix/federation"
)

// loadOrCreateKey reads the server's ed25519 signing key (Synapse's file format), creating it
// on first start. It lives in the data dir so that a committed container keeps its identity.
func loadOrCreateKey(path string) (*federation.SigningKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := federation.ParseSynapseKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	k := federation.GenerateSigningKey()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(k.SynapseString()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("install signing key: %w", err)
	}
	return k, nil
}
