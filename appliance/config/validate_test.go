package config

import (
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateEachProblem(t *testing.T) {
	cases := map[string]struct {
		edit func(*Config)
		want string
	}{
		"server name":      {func(c *Config) { c.ServerName = "bad name" }, "server_name"},
		"empty server":     {func(c *Config) { c.ServerName = "" }, "server_name"},
		"data dir":         {func(c *Config) { c.DataDir = "" }, "data_dir"},
		"listen":           {func(c *Config) { c.Listen = "8008" }, "listen"},
		"listen port":      {func(c *Config) { c.Listen = "localhost:http" }, "listen"},
		"federation":       {func(c *Config) { c.FederationListen = "[::1]:99999" }, "federation_listen"},
		"cert without key": {func(c *Config) { c.TLSCert = "c.pem" }, "tls_cert and tls_key"},
		"ca without key":   {func(c *Config) { c.TLSCAKey = "k.pem" }, "tls_ca and tls_ca_key"},
		"base url":         {func(c *Config) { c.PublicBaseURL = "matrix.example" }, "public_base_url"},
		"password length":  {func(c *Config) { c.Registration.MinPasswordLength = -1 }, "min_password_length"},
		"per second":       {func(c *Config) { c.Limits.PerSecond = 0 }, "limits.per_second"},
		"burst":            {func(c *Config) { c.Limits.Burst = -1 }, "limits.burst"},
		"body":             {func(c *Config) { c.Limits.MaxBodyBytes = 0 }, "limits.max_body_bytes"},
		"sync timeout":     {func(c *Config) { c.Limits.SyncTimeoutMax = 0 }, "limits.sync_timeout_max"},
		"log level":        {func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		"log format":       {func(c *Config) { c.Log.Format = "xml" }, "log.format"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := Default()
			tc.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	cfg := Default()
	cfg.ServerName = "[::1]:8448"
	cfg.Listen = ":8008"
	cfg.FederationListen = "0.0.0.0:0"
	cfg.TLSCert, cfg.TLSKey = "c.pem", "k.pem"
	cfg.TLSCA, cfg.TLSCAKey = "ca.pem", "ca.key"
	cfg.PublicBaseURL = "https://matrix.example"
	cfg.Limits.RateLimit = false
	cfg.Limits.PerSecond, cfg.Limits.Burst = 0, 0 // irrelevant while rate limiting is off
	cfg.Log = Log{Level: "DEBUG", Format: "json"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	cfg := Default()
	cfg.ServerName = ""
	cfg.DataDir = ""
	cfg.Listen = "nope"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 3 {
		t.Fatalf("want 3 problems, one per line, got %d:\n%v", n, err)
	}
}
