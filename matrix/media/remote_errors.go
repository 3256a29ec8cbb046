package media

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Errors of remote media. The spec gives 502 M_TOO_LARGE for content too large for this server
// to serve and 504 M_NOT_YET_UPLOADED for content still being uploaded at the origin; for an
// origin that cannot be reached it names no code, so (as Synapse does) 502 M_UNKNOWN when it
// refused or failed and 504 M_UNKNOWN when it did not answer in time.

func errRemoteTooLarge(limit int64) *merr.Error {
	return &merr.Error{Status: http.StatusBadGateway, Code: "M_TOO_LARGE", Message: fmt.Sprintf("remote media is larger than this server's limit of %d bytes", limit)}
}

func remoteUnavailable(msg string) *merr.Error {
	return &merr.Error{Status: http.StatusBadGateway, Code: "M_UNKNOWN", Message: msg}
}

func remoteTimeout(msg string) *merr.Error {
	return &merr.Error{Status: http.StatusGatewayTimeout, Code: "M_UNKNOWN", Message: msg}
}

// remoteError turns a fetch failure into the client's answer: Matrix errors the source chose
// pass through, timeouts become 504 and everything else 502 (with the cause kept for logs).
func remoteError(err error) error {
	if me, ok := merr.As(err); ok {
		return me
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		e := remoteTimeout("timed out fetching remote media")
		e.Cause = err
		return e
	}
	e := remoteUnavailable("could not fetch remote media")
	e.Cause = err
	return e
}
