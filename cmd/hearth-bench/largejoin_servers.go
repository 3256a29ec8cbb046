package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// The large-join benchmark's servers: Hearth processes that federate on loopback, each named
// localhost:PORT with its federation listener on that port and a certificate signed by one CA
// made for the run (the Complement contract: tls_ca and tls_ca_key), which they also trust
// outbound.

// benchCA is a certificate authority on disk.
type benchCA struct{ Cert, Key string }

// newBenchCA writes a fresh P-256 CA into dir.
func newBenchCA(dir string) (benchCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return benchCA{}, fmt.Errorf("CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "hearth-bench large-join CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return benchCA{}, fmt.Errorf("CA certificate: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return benchCA{}, fmt.Errorf("CA key: %w", err)
	}
	ca := benchCA{Cert: filepath.Join(dir, "ca.crt"), Key: filepath.Join(dir, "ca.key")}
	if err := os.WriteFile(ca.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return benchCA{}, err
	}
	if err := os.WriteFile(ca.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return benchCA{}, err
	}
	return ca, nil
}

// freePort is a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// fedHearth is a Hearth target that federates: its server name and federation port are fixed
// before start so that the other server can be told how to reach it.
type fedHearth struct {
	*target
	ServerName string
}

// fedHearthTarget serves Hearth from bin as localhost:PORT. asDir, when set, is the
// application-service registration folder; memLimit, when set, becomes GOMEMLIMIT.
func fedHearthTarget(name, bin string, ca benchCA, asDir, memLimit string) (*fedHearth, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	serverName := "localhost:" + strconv.Itoa(port)
	t := &target{
		Name:     name,
		Binary:   bin,
		Version:  "bench build",
		prepare:  func(string, string) error { return nil },
		storeDir: func(dataDir string) string { return dataDir },
		command: func(dataDir, addr, secret string) *exec.Cmd {
			cmd := exec.Command(bin, "serve", "--data", dataDir, "--listen", addr)
			env := envWithout([]string{"HEARTH_", "GOMEMLIMIT=", "GOGC="},
				"HEARTH_SERVER_NAME="+serverName,
				"HEARTH_FEDERATION_LISTEN=127.0.0.1:"+strconv.Itoa(port),
				"HEARTH_TLS_CA="+ca.Cert,
				"HEARTH_TLS_CA_KEY="+ca.Key,
				"HEARTH_REGISTRATION_SHARED_SECRET="+secret,
				"HEARTH_LIMITS_RATE_LIMIT=false",
				"HEARTH_LOG_LEVEL=info",
			)
			if asDir != "" {
				env = append(env, "HEARTH_APPSERVICE_DIR="+asDir)
			}
			if memLimit != "" {
				env = append(env, "GOMEMLIMIT="+memLimit)
			}
			cmd.Env = env
			return cmd
		},
	}
	if st, err := os.Stat(bin); err == nil {
		t.BinarySize = st.Size()
	}
	return &fedHearth{target: t, ServerName: serverName}, nil
}
