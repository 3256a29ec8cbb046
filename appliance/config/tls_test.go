package config

import (
	"slices"
	"strings"
	"testing"
)

func TestValidateTLS(t *testing.T) {
	cases := map[string]struct {
		edit func(*Config)
		want string // "" = valid
	}{
		"auto default":        {func(c *Config) {}, ""},
		"unknown mode":        {func(c *Config) { c.TLS.Mode = "letsencrypt" }, "tls_mode"},
		"files without cert":  {func(c *Config) { c.TLS.Mode = "files" }, "tls_mode files needs tls_cert"},
		"ca without ca":       {func(c *Config) { c.TLS.Mode = "ca" }, "tls_mode ca needs tls_ca"},
		"acme without agree":  {func(c *Config) { c.ServerName = "example.org"; c.TLS.Mode = "acme" }, "acme_agree"},
		"acme IP server name": {func(c *Config) { c.ServerName = "10.0.0.1"; c.TLS.Mode = "acme"; c.TLS.ACMEAgree = true }, "acme_domains"},
		"acme ok": {func(c *Config) {
			c.ServerName = "example.org:8448"
			c.TLS = TLS{Mode: "acme", ACMEAgree: true, ACMEEmail: "me@example.org", ACMECA: "https://acme-staging-v02.api.letsencrypt.org/directory"}
		}, ""},
		"acme ca http":      {func(c *Config) { c.TLS.ACMECA = "http://ca.example/dir" }, "acme_ca"},
		"acme email":        {func(c *Config) { c.TLS.ACMEEmail = "nobody" }, "acme_email"},
		"acme domain port":  {func(c *Config) { c.TLS.ACMEDomains = []string{"example.org:443"} }, "acme_domains"},
		"acme domain IP":    {func(c *Config) { c.TLS.ACMEDomains = []string{"192.0.2.1"} }, "acme_domains"},
		"lan names ok":      {func(c *Config) { c.TLS.LANNames = []string{"hearth.local", "192.168.1.2", "fd00::1"} }, ""},
		"lan name bad":      {func(c *Config) { c.TLS.LANNames = []string{"my box"} }, "tls_lan_names"},
		"extra ca empty":    {func(c *Config) { c.TLSExtraCA = []string{" "} }, "tls_extra_ca"},
		"localca explicit":  {func(c *Config) { c.TLS.Mode = "localca" }, ""},
		"selfsigned explic": {func(c *Config) { c.TLS.Mode = "selfsigned" }, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := Default()
			tc.edit(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid configuration refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestTLSKeysFromEnvAndFlags(t *testing.T) {
	env := []string{"HEARTH_ACME_DOMAINS=matrix.example.org, example.org", "HEARTH_ACME_AGREE=true", "HEARTH_TLS_MODE=acme"}
	cfg, err := Load("", env, Overrides{"tls_extra_ca": "/etc/a.pem,/etc/b.pem", "tls_lan_names": ""})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.TLS.ACMEDomains, []string{"matrix.example.org", "example.org"}) || !cfg.TLS.ACMEAgree || cfg.TLS.Mode != "acme" {
		t.Errorf("from environment: %+v", cfg.TLS)
	}
	if !slices.Equal(cfg.TLSExtraCA, []string{"/etc/a.pem", "/etc/b.pem"}) || len(cfg.TLS.LANNames) != 0 {
		t.Errorf("from flags: extra CA %v, LAN names %v", cfg.TLSExtraCA, cfg.TLS.LANNames)
	}
	file := writeFile(t, "tls_mode: localca\ntls_lan_names: [hearth.local, 192.168.1.9]\nacme_email: me@example.org\n")
	cfg, err = Load(file, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.Mode != "localca" || !slices.Equal(cfg.TLS.LANNames, []string{"hearth.local", "192.168.1.9"}) || cfg.TLS.ACMEEmail != "me@example.org" {
		t.Errorf("from file: %+v", cfg.TLS)
	}
}
