package appliance

import (
	"fmt"

	"github.com/hearth-home/hearth/matrix/media"
	hearthtls "github.com/hearth-home/hearth/tls"
)

// startRemoteMedia lets the content repository fetch other servers' media over federation and
// starts its cache sweeper; the returned func stops the sweeper (it writes the store, so it
// must stop before the store closes). Without federation remote media answers 404.
//
// Redirects that origins send (a Location part) are verified against the same roots as
// federation and may reach private addresses only when URL previews may.
func (a *Appliance) startRemoteMedia() (func(), error) {
	if a.fedsys == nil || a.media == nil {
		return func() {}, nil
	}
	var cas []string
	if a.cfg.TLSCA != "" {
		cas = append(cas, a.cfg.TLSCA)
	}
	cas = append(cas, a.cfg.TLSExtraCA...)
	roots, err := hearthtls.ExtraRoots(cas)
	if err != nil {
		return nil, fmt.Errorf("remote media: %w", err)
	}
	m := a.cfg.Media
	a.media.EnableRemote(media.RemoteOptions{
		Source:    media.NewFederationSource(a.fedsys.client, roots, m.URLPreviewAllowPrivate),
		MaxBytes:  m.RemoteCacheMaxBytes,
		Retention: m.RemoteRetention,
	})
	return a.media.Close, nil
}
