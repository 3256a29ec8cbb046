package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServerNoticesValidation(t *testing.T) {
	cfg := Default()
	if cfg.ServerNotices.SystemMXIDLocalpart != "" {
		t.Fatalf("server notices must be off by default: %+v", cfg.ServerNotices)
	}
	cfg.ServerNotices.SystemMXIDLocalpart = "_server"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid localpart refused: %v", err)
	}
	for name, edit := range map[string]func(*ServerNotices){
		"system_mxid_localpart":  func(n *ServerNotices) { n.SystemMXIDLocalpart = "Server Notices" },
		"system_mxid_avatar_url": func(n *ServerNotices) { n.SystemMXIDAvatarURL = "https://example.org/a.png" },
		"room_avatar_url":        func(n *ServerNotices) { n.RoomAvatarURL = "a.png" },
	} {
		c := Default()
		edit(&c.ServerNotices)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "server_notices."+name) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestServerNoticesFromYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hearth.yaml")
	yaml := "server_name: example.org\ndata_dir: /tmp/x\nserver_notices:\n  system_mxid_localpart: _server\n  room_name: Alerts\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.ServerNotices
	// Keys not in the file keep their defaults.
	if n.SystemMXIDLocalpart != "_server" || n.RoomName != "Alerts" || n.SystemMXIDDisplayName != "Server Notices" {
		t.Fatalf("loaded %+v", n)
	}
}
