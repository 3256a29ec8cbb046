package keyring

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// DNS is what server discovery needs from the resolver. *net.Resolver satisfies it; tests pass
// a fake so that SRV answers can be chosen.
type DNS interface {
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// DialFunc opens a TCP connection to host:port.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Net is the network policy shared by discovery (the .well-known fetch) and the outbound
// federation client.
type Net struct {
	// DNS resolves SRV records and host names. Nil: net.DefaultResolver.
	DNS DNS
	// Roots verifies servers' certificates. Nil: the system roots. With extra CAs (config
	// tls_extra_ca, and the Complement CA) pass tls.ExtraRoots(files).
	Roots *x509.CertPool
	// AllowIP filters the addresses we connect to (after DNS). Nil: everything but
	// unspecified and multicast addresses. An appliance on a home LAN federates with
	// neighbours on private addresses, so private ranges are allowed by default.
	AllowIP func(net.IP) bool
	// Dial, when set, replaces host lookup and dialling entirely (tests route names to
	// loopback listeners with it). AllowIP is not applied to it.
	Dial DialFunc
	// DialTimeout bounds one connection attempt. Default 10 s.
	DialTimeout time.Duration
}

func (n Net) dns() DNS {
	if n.DNS == nil {
		return net.DefaultResolver
	}
	return n.DNS
}

func defaultAllowIP(ip net.IP) bool { return !ip.IsUnspecified() && !ip.IsMulticast() }

// dialer returns the dial function: host names are looked up through n.DNS and every address
// is tried in turn; each address passes AllowIP before a connection is made.
func (n Net) dialer() DialFunc {
	if n.Dial != nil {
		return n.Dial
	}
	allow := n.AllowIP
	if allow == nil {
		allow = defaultAllowIP
	}
	timeout := n.DialTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	d := &net.Dialer{
		Timeout: timeout,
		ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return fmt.Errorf("keyring: dial %q: %w", address, err)
			}
			if ip := net.ParseIP(host); ip == nil || !allow(ip) {
				return fmt.Errorf("keyring: refusing to connect to %s", host)
			}
			return nil
		},
	}
	dns := n.dns()
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("keyring: dial %q: %w", addr, err)
		}
		if net.ParseIP(host) != nil {
			return d.DialContext(ctx, network, addr)
		}
		ips, err := dns.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("keyring: look up %s: %w", host, err)
		}
		var errs []error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.IP.String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			return nil, fmt.Errorf("keyring: no addresses for %s", host)
		}
		return nil, fmt.Errorf("keyring: dial %s: %w", addr, errors.Join(errs...))
	}
}

func (n Net) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: n.Roots, MinVersion: tls.VersionTLS12}
}
