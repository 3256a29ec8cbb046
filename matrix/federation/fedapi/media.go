package fedapi

import (
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/media"
	"github.com/hearth-home/hearth/matrix/merr"
)

// Content repository for other servers (spec: content_repository.yaml, v1.11): local media
// and thumbnails as multipart/mixed with exactly two parts, the JSON metadata (an empty
// object) and the bytes with their Content-Type and Content-Disposition.

func (a *api) routesMedia(g *echo.Group, mw []echo.MiddlewareFunc) {
	g.GET("/v1/media/download/:mediaId", a.mediaDownload, mw...)
	g.GET("/v1/media/thumbnail/:mediaId", a.mediaThumbnail, mw...)
}

func (a *api) needMedia() error {
	if a.d.Media == nil {
		return merr.Unrecognized("media is not served here")
	}
	return nil
}

// mediaWait reads timeout_ms (how long to wait for an asynchronous upload).
func mediaWait(c echo.Context) (int64, error) {
	v := c.QueryParam("timeout_ms")
	if v == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, merr.InvalidParam("timeout_ms must be a non-negative integer")
	}
	return n, nil
}

// writeMultipart answers 200 with the metadata part and a content part whose body write
// copies in. Errors after the first byte can only cut the response short.
func writeMultipart(c echo.Context, contentType, disposition string, size int64, write func(io.Writer) error) error {
	resp := c.Response()
	mw := multipart.NewWriter(resp)
	resp.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	resp.WriteHeader(http.StatusOK)
	meta, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
	if err != nil {
		return fmt.Errorf("write metadata part: %w", err)
	}
	if err := json.NewEncoder(meta).Encode(struct{}{}); err != nil {
		return fmt.Errorf("write metadata part: %w", err)
	}
	h := textproto.MIMEHeader{"Content-Type": {contentType}, "Content-Disposition": {disposition}}
	if size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	part, err := mw.CreatePart(h)
	if err != nil {
		return fmt.Errorf("write content part: %w", err)
	}
	if err := write(part); err != nil {
		return fmt.Errorf("write content part: %w", err)
	}
	return mw.Close()
}

func (a *api) mediaDownload(c echo.Context) error {
	if _, err := Origin(c); err != nil {
		return err
	}
	if err := a.needMedia(); err != nil {
		return err
	}
	wait, err := mediaWait(c)
	if err != nil {
		return err
	}
	rec, f, err := a.d.Media.Open(c.Request().Context(), a.d.ServerName, c.Param("mediaId"), media.Wait(wait))
	if err != nil {
		return err
	}
	defer f.Close()
	ct, inline := media.ServeType(rec.ContentType)
	return writeMultipart(c, ct, media.ContentDisposition(inline, rec.Filename), rec.Size, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}

func dimQuery(c echo.Context, name string) (int, error) {
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

func (a *api) mediaThumbnail(c echo.Context) error {
	if _, err := Origin(c); err != nil {
		return err
	}
	if err := a.needMedia(); err != nil {
		return err
	}
	w, err := dimQuery(c, "width")
	if err != nil {
		return err
	}
	h, err := dimQuery(c, "height")
	if err != nil {
		return err
	}
	if _, err := boolQuery(c, "animated"); err != nil {
		return err
	}
	wait, err := mediaWait(c)
	if err != nil {
		return err
	}
	th, err := a.d.Media.Thumbnail(c.Request().Context(), a.d.ServerName, c.Param("mediaId"), w, h, c.QueryParam("method"), media.Wait(wait))
	if err != nil {
		return err
	}
	name := "thumbnail.png"
	if th.ContentType == "image/jpeg" {
		name = "thumbnail.jpg"
	}
	return writeMultipart(c, th.ContentType, media.ContentDisposition(true, name), int64(len(th.Data)), func(w io.Writer) error {
		_, err := w.Write(th.Data)
		return err
	})
}
