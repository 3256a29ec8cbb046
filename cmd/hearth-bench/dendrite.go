package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// dendriteVersion is the peer the issue names.
const dendriteVersion = "v0.13.8"

// installDendrite installs dendrite, generate-config and generate-keys into
// cacheDir/dendrite/bin with `go install` (stripped like Hearth's release build, so binary sizes
// compare). It skips the install when a stamp says this version is there.
func installDendrite(ctx context.Context, cacheDir string) (string, error) {
	binDir := filepath.Join(cacheDir, "dendrite", "bin")
	stamp := filepath.Join(binDir, ".installed")
	want := dendriteVersion + " -trimpath -s -w"
	if b, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(b)) == want {
		if _, err := os.Stat(filepath.Join(binDir, "dendrite")); err == nil {
			return binDir, nil
		}
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	var pkgs []string
	for _, c := range []string{"dendrite", "generate-config", "generate-keys"} {
		pkgs = append(pkgs, "github.com/matrix-org/dendrite/cmd/"+c+"@"+dendriteVersion)
	}
	// Outside any module, with cgo on (Dendrite's SQLite driver is mattn/go-sqlite3).
	env := envWithout([]string{"GOBIN=", "GOFLAGS=", "CGO_ENABLED="}, "GOBIN="+binDir, "CGO_ENABLED=1", "GOFLAGS=-mod=mod")
	args := append([]string{"install", "-trimpath", "-ldflags=-s -w"}, pkgs...)
	logf("installing Dendrite %s into %s (go %s; the first time takes several minutes)", dendriteVersion, binDir, strings.Join(args, " "))
	if err := runCmd(ctx, os.TempDir(), env, goTool(), args...); err != nil {
		return "", err
	}
	return binDir, os.WriteFile(stamp, []byte(want+"\n"), 0o644)
}

// dendriteTarget serves Dendrite from binDir with a configuration made by its own
// generate-config, edited for the benchmark: SQLite files in the data directory, loopback
// only, federation off, rate limiting off, shared-secret registration on, logs at warn.
func dendriteTarget(binDir string) *target {
	bin := filepath.Join(binDir, "dendrite")
	t := &target{
		Name:    "Dendrite",
		Binary:  bin,
		Version: dendriteVersion,
		prepare: func(dataDir, secret string) error { return configureDendrite(binDir, dataDir, secret) },
		command: func(dataDir, addr, secret string) *exec.Cmd {
			cmd := exec.Command(bin, "-config", filepath.Join(dataDir, "dendrite.yaml"), "-http-bind-address", addr)
			cmd.Dir = dataDir
			cmd.Env = envWithout([]string{"PPROFLISTEN=", "GOMEMLIMIT=", "GOGC="})
			return cmd
		},
		storeDir: func(dataDir string) string { return dataDir },
	}
	if st, err := os.Stat(bin); err == nil {
		t.BinarySize = st.Size()
	}
	return t
}

// configureDendrite writes dataDir/dendrite.yaml and dataDir/matrix_key.pem.
func configureDendrite(binDir, dataDir, secret string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	if err := runCmd(ctx, dataDir, nil, filepath.Join(binDir, "generate-keys"), "-private-key", "matrix_key.pem"); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "generate-config"), "-dir", dataDir, "-server", "localhost").Output()
	if err != nil {
		return fmt.Errorf("generate-config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "dendrite.generated.yaml"), out, 0o600); err != nil {
		return err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		return fmt.Errorf("parse generated dendrite config: %w", err)
	}
	set := func(path string, v any) {
		keys := strings.Split(path, ".")
		m := cfg
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}
	set("global.server_name", "localhost")
	set("global.private_key", filepath.Join(dataDir, "matrix_key.pem"))
	set("global.disable_federation", true) // no outbound traffic
	set("global.trusted_third_party_id_servers", []any{})
	set("global.report_stats.enabled", false)
	set("global.dns_cache.enabled", false)
	set("global.jetstream.storage_path", dataDir)
	set("global.jetstream.in_memory", false)
	set("federation_api.key_perspectives", []any{}) // never ask matrix.org for keys
	set("federation_api.prefer_direct_fetch", true)
	set("client_api.registration_shared_secret", secret)
	set("client_api.registration_disabled", true) // shared-secret registration still works
	set("client_api.rate_limiting.enabled", false)
	set("sync_api.search.enabled", false) // Hearth has no search index yet
	set("media_api.base_path", filepath.Join(dataDir, "media"))
	set("logging", []any{map[string]any{"type": "std", "level": "warn"}})
	set("tracing.enabled", false)
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dataDir, "dendrite.yaml"), b, 0o600)
}
