package media

import (
	"net/http"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Errcodes of the content repository that merr has no constructor for.
var (
	errCannotOverwrite = func() *merr.Error {
		return &merr.Error{Status: http.StatusConflict, Code: "M_CANNOT_OVERWRITE_MEDIA", Message: "media already uploaded"}
	}
	errNotYetUploaded = func() *merr.Error {
		return &merr.Error{Status: http.StatusGatewayTimeout, Code: "M_NOT_YET_UPLOADED", Message: "content has not yet been uploaded"}
	}
	errNotFound = func() *merr.Error { return merr.NotFound("media not found") }
)
