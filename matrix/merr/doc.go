// Package merr is the one Matrix error type: an errcode, an HTTP status and a message, plus the
// optional fields some errcodes carry. Domain packages return these; the client API's echo error
// handler is the only place that turns them into responses.
package merr
