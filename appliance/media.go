package appliance

import "github.com/hearth-home/hearth/matrix/media"

// newMedia builds the content repository from the media section of the config.
func (a *Appliance) newMedia() *media.Service {
	m := a.cfg.Media
	return media.New(a.st, media.Options{
		ServerName:             a.cfg.ServerName,
		DataDir:                a.cfg.DataDir,
		MaxUploadBytes:         m.MaxUploadBytes,
		URLPreview:             m.URLPreview,
		URLPreviewAllowPrivate: m.URLPreviewAllowPrivate,
		LegacyUnauthenticated:  m.LegacyUnauthenticated,
	}, a.log)
}
