package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	hearthtls "github.com/hearth-home/hearth/tls"
)

// Dendrite as the joining server of the large-join benchmark, for a ratio: its client API on
// plain HTTP, its federation on HTTPS at the port in its server name with a certificate from the
// run's CA (so the resident verifies it as a real certificate). Dendrite takes no CA bundle for
// outbound federation, so it skips certificate checks instead.

// dendriteJoiner is the NAME=dendrite joiner: Dendrite installed into the cache.
const dendriteJoiner = "dendrite"

// fedDendriteTarget makes a federating Dendrite target (installing Dendrite when needed).
func fedDendriteTarget(ctx context.Context, cache, name string, ca benchCA) (*fedHearth, error) {
	binDir, err := installDendrite(ctx, cache)
	if err != nil {
		return nil, fmt.Errorf("install Dendrite: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	serverName := "localhost:" + strconv.Itoa(port)
	t := dendriteTarget(binDir)
	t.Name = name
	t.prepare = func(dataDir, secret string) error {
		if err := configureDendrite(binDir, dataDir, secret); err != nil {
			return err
		}
		return federateDendrite(dataDir, serverName, ca)
	}
	plain := t.command
	t.command = func(dataDir, addr, secret string) *exec.Cmd {
		cmd := plain(dataDir, addr, secret)
		cmd.Args = append(cmd.Args,
			"-https-bind-address", "127.0.0.1:"+strconv.Itoa(port),
			"-tls-cert", filepath.Join(dataDir, "tls.crt"), "-tls-key", filepath.Join(dataDir, "tls.key"))
		return cmd
	}
	return &fedHearth{target: t, ServerName: serverName}, nil
}

// federateDendrite edits the benchmark's Dendrite configuration in dataDir for loopback
// federation as serverName and writes its certificate, issued by ca.
func federateDendrite(dataDir, serverName string, ca benchCA) error {
	path := filepath.Join(dataDir, "dendrite.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("parse dendrite config: %w", err)
	}
	section := func(name string) map[string]any {
		m, ok := cfg[name].(map[string]any)
		if !ok {
			m = map[string]any{}
			cfg[name] = m
		}
		return m
	}
	g := section("global")
	g["server_name"] = serverName
	g["disable_federation"] = false
	if sn, ok := g["server_notices"].(map[string]any); ok {
		sn["enabled"] = false
	}
	f := section("federation_api")
	f["disable_tls_validation"] = true
	f["key_perspectives"] = []any{}
	f["prefer_direct_fetch"] = true
	// Info level: the join's progress is worth reading afterwards.
	cfg["logging"] = []any{map[string]any{"type": "std", "level": "info"}}
	if b, err = yaml.Marshal(cfg); err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	leaf, _, err := hearthtls.SignWithCA(ca.Cert, ca.Key, strings.Split(serverName, ":")[0])
	if err != nil {
		return fmt.Errorf("dendrite certificate: %w", err)
	}
	var chain bytes.Buffer
	for _, der := range leaf.Certificate {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	kb, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		return fmt.Errorf("dendrite key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "tls.crt"), chain.Bytes(), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dataDir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
}
