package tls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// leafValidity is how long a certificate issued here stays valid.
const leafValidity = 365 * 24 * time.Hour

// clockSkew back-dates NotBefore so that a peer whose clock lags a little still accepts the leaf.
const clockSkew = 5 * time.Minute

// SignWithCA loads a PEM CA certificate and its PEM private key, generates a fresh ECDSA P-256
// key and issues a leaf certificate for serverName, valid for one year and signed by the CA.
//
// serverName may carry a port ("hs1:8448"); it is stripped. An IP address becomes an IP SAN,
// anything else a DNS SAN. The key may be PKCS#1 RSA ("RSA PRIVATE KEY", Complement's format),
// PKCS#8 (RSA, ECDSA or Ed25519) or SEC 1 EC ("EC PRIVATE KEY").
//
// It returns the leaf with the CA in its chain, and a pool holding the CA, to be trusted for
// outbound connections to servers whose certificates the same CA signed.
func SignWithCA(caCertFile, caKeyFile, serverName string) (*stdtls.Certificate, *x509.CertPool, error) {
	caCert, err := loadCertificate(caCertFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: CA certificate: %w", err)
	}
	caKey, err := loadPrivateKey(caKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: CA key: %w", err)
	}
	if !publicKeysEqual(caCert.PublicKey, caKey.Public()) {
		return nil, nil, fmt.Errorf("tls: CA key %s does not match CA certificate %s", caKeyFile, caCertFile)
	}
	leaf, err := issue(caCert, caKey, serverName)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return leaf, pool, nil
}

// LoadFiles loads a certificate chain and its key from PEM files.
func LoadFiles(certFile, keyFile string) (*stdtls.Certificate, error) {
	c, err := stdtls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	return &c, nil
}

// SelfSigned makes a throwaway self-signed certificate for serverName, for when no certificate
// and no CA is configured. Remote servers will not trust it; it only lets the listener start.
func SelfSigned(serverName string) (*stdtls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls: generate key: %w", err)
	}
	tmpl, err := leafTemplate(serverName)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tls: self-sign certificate for %q: %w", serverName, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tls: parse self-signed certificate: %w", err)
	}
	return &stdtls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// issue generates a P-256 key and a leaf for serverName signed by the CA.
func issue(caCert *x509.Certificate, caKey crypto.Signer, serverName string) (*stdtls.Certificate, error) {
	return issueNames(caCert, caKey, []string{HostOnly(serverName)}, leafValidity)
}

// issueNames generates a P-256 key and a leaf for names signed by the CA, with the CA in the
// chain so that clients that trust the CA can verify it.
func issueNames(caCert *x509.Certificate, caKey crypto.Signer, names []string, validity time.Duration) (*stdtls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls: generate key: %w", err)
	}
	tmpl, err := leafTemplateNames(names, validity)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("tls: sign certificate for %q: %w", names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tls: parse issued certificate: %w", err)
	}
	return &stdtls.Certificate{
		Certificate: [][]byte{der, caCert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// leafTemplate is a server (and client, for federation requests) certificate for serverName.
func leafTemplate(serverName string) (*x509.Certificate, error) {
	return leafTemplateNames([]string{HostOnly(serverName)}, leafValidity)
}

// leafTemplateNames is a server and client certificate for several names, valid for validity.
// The first name is the subject; an IP address becomes an IP SAN, anything else a DNS SAN.
func leafTemplateNames(names []string, validity time.Duration) (*x509.Certificate, error) {
	if len(names) == 0 || names[0] == "" {
		return nil, errors.New("tls: empty server name")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tls: serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"Hearth"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return tmpl, nil
}

// HostOnly strips a port and IPv6 brackets from a server name: "hs1:8448" -> "hs1",
// "[::1]:8448" -> "::1", "hs1" -> "hs1".
func HostOnly(serverName string) string {
	s := strings.TrimSpace(serverName)
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
}

// loadCertificate reads the first CERTIFICATE block of a PEM file.
func loadCertificate(file string) (*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", file)
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return c, nil
	}
}

// loadPrivateKey reads the first private key block of a PEM file, in PKCS#1, PKCS#8 or SEC 1 form.
func loadPrivateKey(file string) (crypto.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM private key block", file)
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: PKCS#1: %w", file, err)
			}
			return k, nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: SEC 1: %w", file, err)
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: PKCS#8: %w", file, err)
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("%s: PKCS#8 key of type %T cannot sign", file, k)
			}
			return s, nil
		}
	}
}

// publicKeysEqual reports whether two public keys are the same key. Every public key type in the
// standard library has an Equal method.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
