package clientapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/media"
	"github.com/hearth-home/hearth/matrix/merr"
)

// The content repository (spec: content-repo.yaml, authed-content-repo.yaml): uploads under
// /_matrix/media, authenticated downloads under /_matrix/client/v1/media, and the deprecated
// unauthenticated /_matrix/media/v3 downloads when the config keeps them. Request bodies here
// are bounded by media.max_upload_bytes, not by the general body limit (see bodyLimit).

func (a *API) routesMedia(e *echo.Echo) {
	m := a.deps.Media
	if m == nil {
		return
	}
	g := e.Group("/_matrix/media")
	for _, v := range []string{"/v3", "/r0"} {
		g.POST(v+"/upload", a.mediaUpload, a.auth)
		g.PUT(v+"/upload/:serverName/:mediaId", a.mediaUploadTo, a.auth)
		g.GET(v+"/config", a.mediaConfig, a.auth)
		g.GET(v+"/preview_url", a.mediaPreview, a.auth, a.rateLimited)
		if m.LegacyUnauthenticated() {
			g.GET(v+"/download/:serverName/:mediaId", a.mediaDownload)
			g.GET(v+"/download/:serverName/:mediaId/:fileName", a.mediaDownload)
			g.GET(v+"/thumbnail/:serverName/:mediaId", a.mediaThumbnail)
		}
	}
	g.POST("/v1/create", a.mediaCreate, a.auth, a.rateLimited)

	c := e.Group("/_matrix/client/v1/media")
	c.GET("/download/:serverName/:mediaId", a.mediaDownload, a.auth)
	c.GET("/download/:serverName/:mediaId/:fileName", a.mediaDownload, a.auth)
	c.GET("/thumbnail/:serverName/:mediaId", a.mediaThumbnail, a.auth)
	c.GET("/config", a.mediaConfig, a.auth)
	c.GET("/preview_url", a.mediaPreview, a.auth, a.rateLimited)
}

func (a *API) mediaUpload(c echo.Context) error {
	r := c.Request()
	if r.ContentLength > a.deps.Media.MaxUploadBytes() {
		return merr.TooLarge("upload is larger than %d bytes", a.deps.Media.MaxUploadBytes())
	}
	uri, err := a.deps.Media.Upload(r.Context(), session(c).User, r.Header.Get("Content-Type"), c.QueryParam("filename"), r.Body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"content_uri": uri.String()})
}

func (a *API) mediaCreate(c echo.Context) error {
	uri, expires, err := a.deps.Media.Create(c.Request().Context(), session(c).User)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"content_uri": uri.String(), "unused_expires_at": expires})
}

func (a *API) mediaUploadTo(c echo.Context) error {
	r := c.Request()
	if r.ContentLength > a.deps.Media.MaxUploadBytes() {
		return merr.TooLarge("upload is larger than %d bytes", a.deps.Media.MaxUploadBytes())
	}
	err := a.deps.Media.UploadTo(r.Context(), session(c).User, c.Param("serverName"), c.Param("mediaId"),
		r.Header.Get("Content-Type"), c.QueryParam("filename"), r.Body)
	if err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) mediaConfig(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"m.upload.size": a.deps.Media.MaxUploadBytes()})
}

// setMediaHeaders sets the safe-serving headers every media response carries.
func setMediaHeaders(h http.Header, contentType, disposition string) {
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Security-Policy", media.ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("Cache-Control", "private, max-age=86400")
}

func (a *API) mediaDownload(c echo.Context) error {
	r := c.Request()
	rec, f, err := a.deps.Media.Open(r.Context(), c.Param("serverName"), c.Param("mediaId"), mediaWait(c))
	if err != nil {
		return err
	}
	defer f.Close()
	ct, inline := media.ServeType(rec.ContentType)
	name := rec.Filename
	if fn := c.Param("fileName"); fn != "" {
		name = fn
	}
	setMediaHeaders(c.Response().Header(), ct, media.ContentDisposition(inline, name))
	http.ServeContent(c.Response(), r, "", time.UnixMilli(rec.UploadedMS), f)
	return nil
}

func (a *API) mediaThumbnail(c echo.Context) error {
	w, err := thumbDimParam(c, "width")
	if err != nil {
		return err
	}
	h, err := thumbDimParam(c, "height")
	if err != nil {
		return err
	}
	if v := c.QueryParam("animated"); v != "" && v != "true" && v != "false" {
		return merr.InvalidParam("animated must be true or false")
	}
	th, err := a.deps.Media.Thumbnail(c.Request().Context(), c.Param("serverName"), c.Param("mediaId"), w, h, c.QueryParam("method"), mediaWait(c))
	if err != nil {
		return err
	}
	name := "thumbnail.png"
	if th.ContentType == "image/jpeg" {
		name = "thumbnail.jpg"
	}
	setMediaHeaders(c.Response().Header(), th.ContentType, media.ContentDisposition(true, name))
	return c.Blob(http.StatusOK, th.ContentType, th.Data)
}

func (a *API) mediaPreview(c echo.Context) error {
	u := c.QueryParam("url")
	if u == "" {
		return merr.MissingParam("url is required")
	}
	if ts := c.QueryParam("ts"); ts != "" {
		if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
			return merr.InvalidParam("ts must be an integer")
		}
	}
	og, err := a.deps.Media.PreviewURL(c.Request().Context(), session(c).User, u)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, og)
}

// mediaWait reads timeout_ms (how long to wait for an asynchronous upload).
func mediaWait(c echo.Context) time.Duration {
	v, err := strconv.ParseInt(c.QueryParam("timeout_ms"), 10, 64)
	if err != nil || v < 0 {
		return media.Wait(-1)
	}
	return media.Wait(v)
}

func thumbDimParam(c echo.Context, name string) (int, error) {
	v := strings.TrimSpace(c.QueryParam(name))
	if v == "" {
		return 0, merr.MissingParam("%s is required", name)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, merr.InvalidParam("%s must be a positive integer", name)
	}
	return n, nil
}
