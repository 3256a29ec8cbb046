package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hearth.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadNoFileIsDefault(t *testing.T) {
	cfg, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("got %+v, want defaults", cfg)
	}
}

func TestLoadPrecedence(t *testing.T) {
	path := writeFile(t, `
server_name: file.example
listen: 0.0.0.0:8008
data_dir: /file
limits:
  burst: 7
  sync_timeout_max: 30s
`)
	env := []string{
		"HEARTH_LISTEN=0.0.0.0:9000",
		"HEARTH_DATA_DIR=/env",
		"HEARTH_LIMITS_RATE_LIMIT=false",
		"HEARTH_REGISTRATION_OPEN=true",
		"UNRELATED=1",
	}
	flags := Overrides{"data_dir": "/flag"}
	cfg, err := Load(path, env, flags)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.ServerName = "file.example" // file only
	want.Listen = "0.0.0.0:9000"     // env beats file
	want.DataDir = "/flag"           // flag beats env and file
	want.Limits.Burst = 7
	want.Limits.SyncTimeoutMax = 30 * time.Second
	want.Limits.RateLimit = false
	want.Registration.Open = true
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestLoadExpandsEnv(t *testing.T) {
	path := writeFile(t, `server_name: "${SERVER_NAME}"
registration:
  shared_secret: "a$$b"
`)
	cfg, err := Load(path, []string{"SERVER_NAME=hs1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "hs1" || cfg.Registration.SharedSecret != "a$b" {
		t.Fatalf("server_name %q, shared_secret %q", cfg.ServerName, cfg.Registration.SharedSecret)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := map[string]struct {
		file  string
		env   []string
		flags Overrides
		want  string
	}{
		"unknown key":      {file: "server_nam: x\n", want: "server_nam"},
		"unknown nested":   {file: "limits:\n  burts: 3\n", want: "burts"},
		"undefined var":    {file: "server_name: $NOPE\n", want: "$NOPE"},
		"two documents":    {file: "listen: a:1\n---\nlisten: b:2\n", want: "more than one"},
		"bad env bool":     {env: []string{"HEARTH_REGISTRATION_OPEN=maybe"}, want: "HEARTH_REGISTRATION_OPEN"},
		"bad env duration": {env: []string{"HEARTH_LIMITS_SYNC_TIMEOUT_MAX=5"}, want: "HEARTH_LIMITS_SYNC_TIMEOUT_MAX"},
		"bad env int":      {env: []string{"HEARTH_LIMITS_BURST=lots"}, want: "HEARTH_LIMITS_BURST"},
		"bad flag":         {flags: Overrides{"limits.per_second": "fast"}, want: "limits.per_second"},
		"unknown flag key": {flags: Overrides{"nope": "1"}, want: `"nope"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			_, err := Load(path, tc.env, tc.flags)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml"), nil, nil); err == nil {
		t.Fatal("want an error for a missing file")
	}
}

func TestLoadEmptyFile(t *testing.T) {
	cfg, err := Load(writeFile(t, "# nothing yet\n"), nil, nil)
	if err != nil || !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("got %+v, %v", cfg, err)
	}
}

func TestEveryKeyHasAWorkingEnvVar(t *testing.T) {
	// Each leaf must be settable from a string, or its HEARTH_* variable would be a trap.
	samples := map[string]string{"string": "x", "bool": "true", "int": "3", "int64": "3",
		"float64": "1.5", "time.Duration": "2s", "[]string": "a,b"}
	cfg := Default()
	for _, l := range leaves(&cfg) {
		s, ok := samples[l.value.Type().String()]
		if !ok {
			t.Errorf("%s: no sample for type %s; extend set() and this test", l.path, l.value.Type())
			continue
		}
		if _, err := Load("", []string{EnvName(l.path) + "=" + s}, nil); err != nil {
			t.Errorf("%s: %v", EnvName(l.path), err)
		}
	}
	keys := Keys()
	for _, k := range []string{"server_name", "registration.open", "limits.rate_limit", "log.format"} {
		if !strings.Contains(strings.Join(keys, " "), k) {
			t.Errorf("Keys() lacks %s: %v", k, keys)
		}
	}
	if got := EnvName("limits.rate_limit"); got != "HEARTH_LIMITS_RATE_LIMIT" {
		t.Errorf("EnvName = %s", got)
	}
}
