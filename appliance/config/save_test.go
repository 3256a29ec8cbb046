package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hearth.yaml")
	cfg := Default()
	cfg.ServerName = "hearth.example"
	cfg.Registration.SharedSecret = "p$ss${HOME}$$" // must not be expanded on the way back
	cfg.Limits.SyncTimeoutMax = 90 * time.Second
	cfg.Limits.PerSecond = 2.5
	if err := Save(path, cfg); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("got  %+v\nwant %+v", got, cfg)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestSaveReplacesAndTightensMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hearth.yaml")
	if err := os.WriteFile(path, []byte("listen: old:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, Default()); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if got, err := Load(path, nil, nil); err != nil || !reflect.DeepEqual(got, Default()) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestSaveMissingDir(t *testing.T) {
	if err := Save(filepath.Join(t.TempDir(), "no", "hearth.yaml"), Default()); err == nil {
		t.Fatal("want an error")
	}
}
