// Package tls holds Hearth's certificate handling: where the federation listener's certificate
// comes from, and which CAs outbound federation trusts.
//
// A Manager (New) serves the listener through TLSConfig's GetCertificate, from one source
// chosen by Mode (Resolve turns "auto" into one):
//
//   - acme: ACME v2 through certmagic (Let's Encrypt production unless acme_ca says otherwise),
//     with HTTP-01 (HTTPHandler wraps the plain listener and answers
//     /.well-known/acme-challenge/) and TLS-ALPN-01 (TLSConfig offers acme-tls/1). The
//     account, certificates and keys live in the Badger store through Storage, whose locks are
//     expiring records renewed while held. certmagic renews on its own schedule (its ratio and
//     the CA's ACME Renewal Info); a failed renewal leaves the current certificate serving, and
//     until the first certificate arrives handshakes get a self-signed fallback.
//   - files: a PEM pair, re-read every interval and swapped in when its content changes; a pair
//     that does not load leaves the previous one serving.
//   - localca: a CA made on first start in <data>/tls (ca.crt, ca.key) signs a leaf for the
//     server name and the LAN names; LAN clients download the CA at CACertPath and install it.
//   - ca: a leaf signed at start by a given CA (SignWithCA, the Complement contract: the suite
//     copies its CA into the container and expects the 8448 certificate to be signed by it).
//   - selfsigned: a throwaway certificate (SelfSigned) that only lets the listener start.
//
// ExtraRoots builds the pool outbound federation verifies peers with: the system roots plus
// extra CA files (a LAN peer's local CA).
//
// The package name shadows crypto/tls; callers import it as hearthtls.
package tls
