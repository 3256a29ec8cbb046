// Package tls holds Hearth's certificate handling.
//
// Today it provides what the federation listener needs to start: certificates loaded from PEM
// files (LoadFiles), a leaf issued at start by a given CA for the server name (SignWithCA, the
// Complement contract: the suite copies its CA into the container and expects the 8448
// certificate to be signed by it, and the same CA to be trusted for outbound federation), and a
// throwaway self-signed certificate when nothing is configured (SelfSigned).
//
// Planned: ACME v2 through certmagic with its storage kept in the store, a local CA for LAN use,
// and the TLS configuration for outbound federation.
//
// The package name shadows crypto/tls; callers import it as hearthtls.
package tls
