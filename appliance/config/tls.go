package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// TLS chooses where the federation listener's certificate comes from (package tls). Its keys
// sit at the top level of the file beside tls_cert, tls_key and tls_ca (the struct is inlined).
type TLS struct {
	// Mode is auto (the default when empty), acme, files, localca, ca or selfsigned. Auto
	// picks ca when tls_ca is set, files when tls_cert is, acme when acme_email and acme_agree
	// are set and the names are public, else localca.
	Mode string `yaml:"tls_mode"`
	// ACMECA is the ACME directory URL; empty means Let's Encrypt production.
	ACMECA string `yaml:"acme_ca"`
	// ACMEEmail is the ACME account contact.
	ACMEEmail string `yaml:"acme_email"`
	// ACMEAgree accepts the ACME CA's terms of service; acme mode needs it.
	ACMEAgree bool `yaml:"acme_agree"`
	// ACMEDomains are the names to get certificates for; empty means server_name's host.
	ACMEDomains []string `yaml:"acme_domains,omitempty"`
	// LANNames are the extra DNS names and IPs of the local CA's certificate (localca mode);
	// empty means hearth.local.
	LANNames []string `yaml:"tls_lan_names,omitempty"`
}

// tlsModes are the values of tls_mode ("" is auto). Kept here rather than imported from the
// tls package, which config must not depend on.
var tlsModes = []string{"", "auto", "acme", "files", "localca", "ca", "selfsigned"}

func (c Config) tlsProblems() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	t := c.TLS
	if !slices.Contains(tlsModes, t.Mode) {
		bad("tls_mode %q: want auto, acme, files, localca, ca or selfsigned", t.Mode)
	}
	switch t.Mode {
	case "files":
		if c.TLSCert == "" {
			bad("tls_mode files needs tls_cert and tls_key")
		}
	case "ca":
		if c.TLSCA == "" {
			bad("tls_mode ca needs tls_ca and tls_ca_key")
		}
	case "acme":
		if !t.ACMEAgree {
			bad("tls_mode acme needs acme_agree: true (you accept the ACME CA's terms of service)")
		}
		if len(t.ACMEDomains) == 0 && !hasDNSHost(c.ServerName) {
			bad("tls_mode acme needs acme_domains when server_name %q is not a DNS name", c.ServerName)
		}
	}
	if t.ACMECA != "" {
		if u, err := url.Parse(t.ACMECA); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("acme_ca %q is not an https:// ACME directory URL", t.ACMECA)
		}
	}
	if t.ACMEEmail != "" && !strings.Contains(strings.Trim(t.ACMEEmail, "@"), "@") {
		bad("acme_email %q is not an e-mail address", t.ACMEEmail)
	}
	for _, d := range t.ACMEDomains {
		if !isDNSName(d) {
			bad("acme_domains: %q is not a DNS name (no port, no IP address)", d)
		}
	}
	for _, n := range t.LANNames {
		if net.ParseIP(n) == nil && !isDNSName(n) {
			bad("tls_lan_names: %q is neither a DNS name nor an IP address", n)
		}
	}
	for _, f := range c.TLSExtraCA {
		if strings.TrimSpace(f) == "" {
			bad("tls_extra_ca has an empty file name")
		}
	}
	return errs
}

// hasDNSHost reports whether a server name's host part is a DNS name (not an IP literal).
func hasDNSHost(serverName string) bool {
	host := serverName
	if h, _, err := net.SplitHostPort(serverName); err == nil {
		host = h
	}
	return isDNSName(host)
}

// isDNSName accepts letters, digits, hyphens and dots in labels of 1 to 63 characters, and
// rejects IP addresses.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 || net.ParseIP(s) != nil {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
