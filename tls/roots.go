package tls

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// ExtraRoots is the pool outbound federation verifies peers against: the system roots plus
// every CERTIFICATE in each PEM file of files (a LAN peer's local CA, a test CA). A file that
// cannot be read or holds no certificate is an error, so that a typo in tls_extra_ca shows at
// start instead of as failed federation later. A system without a root store (a bare image)
// starts from an empty pool.
func ExtraRoots(files []string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("tls: extra CA: %w", err)
		}
		n := 0
		for {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("tls: extra CA %s: certificate %d: %w", f, n+1, err)
			}
			pool.AddCert(c)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("tls: extra CA %s: no PEM CERTIFICATE block", f)
		}
	}
	return pool, nil
}
