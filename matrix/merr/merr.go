package merr

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a Matrix error response.
type Error struct {
	Status  int            `json:"-"`
	Code    string         `json:"errcode"`
	Message string         `json:"error"`
	Extra   map[string]any `json:"-"` // extra top-level fields (retry_after_ms, soft_logout, ...)
	Cause   error          `json:"-"`
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Body returns the JSON object to send.
func (e *Error) Body() map[string]any {
	m := map[string]any{"errcode": e.Code, "error": e.Message}
	for k, v := range e.Extra {
		m[k] = v
	}
	return m
}

// With returns a copy carrying an extra field.
func (e *Error) With(k string, v any) *Error {
	c := *e
	c.Extra = map[string]any{k: v}
	for kk, vv := range e.Extra {
		c.Extra[kk] = vv
	}
	return &c
}

// As finds a *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

func mk(status int, code string) func(format string, a ...any) *Error {
	return func(format string, a ...any) *Error {
		return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
	}
}

// Constructors for the spec's errcodes, each with its usual status.
var (
	Forbidden               = mk(http.StatusForbidden, "M_FORBIDDEN")
	UnknownToken            = mk(http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
	MissingToken            = mk(http.StatusUnauthorized, "M_MISSING_TOKEN")
	BadJSON                 = mk(http.StatusBadRequest, "M_BAD_JSON")
	NotJSON                 = mk(http.StatusBadRequest, "M_NOT_JSON")
	NotFound                = mk(http.StatusNotFound, "M_NOT_FOUND")
	LimitExceeded           = mk(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")
	Unrecognized            = mk(http.StatusNotFound, "M_UNRECOGNIZED")
	Unknown                 = mk(http.StatusBadRequest, "M_UNKNOWN")
	Unauthorized            = mk(http.StatusUnauthorized, "M_UNAUTHORIZED")
	UserDeactivated         = mk(http.StatusForbidden, "M_USER_DEACTIVATED")
	UserInUse               = mk(http.StatusBadRequest, "M_USER_IN_USE")
	InvalidUsername         = mk(http.StatusBadRequest, "M_INVALID_USERNAME")
	RoomInUse               = mk(http.StatusBadRequest, "M_ROOM_IN_USE")
	InvalidRoomState        = mk(http.StatusBadRequest, "M_INVALID_ROOM_STATE")
	UnsupportedRoomVersion  = mk(http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION")
	InvalidParam            = mk(http.StatusBadRequest, "M_INVALID_PARAM")
	MissingParam            = mk(http.StatusBadRequest, "M_MISSING_PARAM")
	TooLarge                = mk(http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
	Exclusive               = mk(http.StatusBadRequest, "M_EXCLUSIVE")
	IncompatibleRoomVersion = mk(http.StatusBadRequest, "M_INCOMPATIBLE_ROOM_VERSION")
	GuestAccessForbidden    = mk(http.StatusForbidden, "M_GUEST_ACCESS_FORBIDDEN")
	WeakPassword            = mk(http.StatusBadRequest, "M_WEAK_PASSWORD")
	BadAlias                = mk(http.StatusBadRequest, "M_BAD_ALIAS")
	NotJoined               = mk(http.StatusForbidden, "M_FORBIDDEN")
	Internal                = mk(http.StatusInternalServerError, "M_UNKNOWN")
	TokenIncorrect          = mk(http.StatusUnauthorized, "M_UNAUTHORIZED")
)
