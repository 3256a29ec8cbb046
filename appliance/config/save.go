package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// Save writes cfg to path as YAML with mode 0600 (it holds the registration shared secret).
// The write is atomic: a temporary file in the same directory is written and fsynced, renamed
// over path and the directory fsynced, so a power cut leaves either the old file or the new
// one, never a torn file that stops the appliance from booting.
func Save(path string, cfg Config) error {
	data, err := marshal(cfg)
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := writeAtomic(path, data); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	return nil
}

func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	// CreateTemp makes the file 0600, so the secret is never readable, not even briefly.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the rename itself durable: without it the directory entry may still point at
// the old file after a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// marshal is the YAML text Save writes. Every "$" is doubled because Load expands variables:
// without it a secret containing "$" would not survive a save and load.
func marshal(cfg Config) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(buf.Bytes(), []byte("$"), []byte("$$")), nil
}
