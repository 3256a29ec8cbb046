package mqtt

import (
	"context"
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
	"path/filepath"
	"testing"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// writeTestPKI writes a CA and a server certificate for 127.0.0.1 signed by it.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hearth test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", der), write("server.key", "EC PRIVATE KEY", keyDER)
}

// TestExternalBrokerTransports connects to a real Mosquitto over ws:// and over ssl:// with a
// private CA, and checks that ssl:// without that CA is refused.
func TestExternalBrokerTransports(t *testing.T) {
	wsPort, tlsPort := freePort(t), freePort(t)
	var caFile string
	env := startMosquittoEnvWith(t, func(dir string) string {
		ca, cert, key := writeTestPKI(t, dir)
		caFile = ca
		return fmt.Sprintf("listener %d 127.0.0.1\nprotocol websockets\n"+
			"listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n", wsPort, tlsPort, ca, cert, key)
	})
	dev := newSimDevice(t, env, []string{"plug/set"}, func(d *simDevice, topic, payload string) {
		d.reply("plug/state", payload)
	})
	dev.pub("homeassistant/switch/plug/config", true, `{"name":"Plug","cmd_t":"plug/set","stat_t":"plug/state","uniq_id":"plug-1"}`)

	for _, tc := range []struct{ name, url, ca string }{
		{"websocket", fmt.Sprintf("ws://127.0.0.1:%d/mqtt", wsPort), ""},
		{"tls", fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort), caFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := *env
			e.url = tc.url
			a, sink := startAdapter(t, &e, func(c *Config) { c.CAFile = tc.ca })
			sink.waitFor(t, "plug over "+tc.name, func(s *recSink) bool { _, ok := s.state("mqtt:ha/plug-1"); return ok })
			for len(dev.msgs) > 0 {
				<-dev.msgs
			}
			command(t, a, "mqtt:ha/plug-1", devices.Command{On: ptr(true)})
			dev.expect(recvMsg{"plug/set", "ON"})
			sink.waitFor(t, "plug on", func(s *recSink) bool { st, _ := s.state("mqtt:ha/plug-1"); return st.On != nil && *st.On })
			command(t, a, "mqtt:ha/plug-1", devices.Command{On: ptr(false)})
			dev.expect(recvMsg{"plug/set", "OFF"})
		})
	}

	t.Run("tls without the CA", func(t *testing.T) {
		a, err := New(Config{BrokerURL: fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort), Username: env.user, Password: env.pass})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		go func() {
			for ctx.Err() == nil {
				if a.Connected() {
					t.Error("connected to a broker whose certificate is not trusted")
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		if err := a.Run(ctx, newRecSink()); err != nil {
			t.Fatal(err)
		}
	})
}
