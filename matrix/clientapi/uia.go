package clientapi

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// User-interactive authentication (spec: Client-Server API, "User-Interactive Authentication
// API"). The sessions themselves live in the accounts service; this file speaks the protocol:
// the 401 body, the stages we can check, and the order of stages within a flow.

const (
	stagePassword = "m.login.password"
	stageDummy    = "m.login.dummy"
	stageRegToken = "m.login.registration_token"
)

// Keys of the data bound to a UIA session in the accounts service.
const (
	uiaKeyOp       = "op"        // the operation the session guards; a session never crosses operations
	uiaKeyUser     = "user"      // the user who passed m.login.password
	uiaKeyRegToken = "reg_token" // the registration token that passed m.login.registration_token
)

// authDict is the `auth` object of a request to an endpoint that uses UIA.
type authDict struct {
	Type       string          `json:"type"`
	Session    string          `json:"session"`
	Identifier *userIdentifier `json:"identifier"`
	User       string          `json:"user"` // deprecated form of identifier {m.id.user}
	Password   string          `json:"password"`
	Token      string          `json:"token"`
}

// userIdentifier is the spec's user identifier object (m.id.user, m.id.thirdparty, m.id.phone).
type userIdentifier struct {
	Type    string `json:"type"`
	User    string `json:"user"`
	Medium  string `json:"medium"`
	Address string `json:"address"`
	Country string `json:"country"`
	Phone   string `json:"phone"`
}

type uiaFlow struct {
	Stages []string `json:"stages"`
}

// uiaResponse is the 401 body of the spec: flows, params and session, plus completed once a
// stage is done and errcode/error when the last attempt at a stage failed.
type uiaResponse struct {
	Errcode   string         `json:"errcode,omitempty"`
	Error     string         `json:"error,omitempty"`
	Completed []string       `json:"completed,omitempty"`
	Flows     []uiaFlow      `json:"flows"`
	Params    map[string]any `json:"params"`
	Session   string         `json:"session"`
}

// uiaSpec is what one request needs.
type uiaSpec struct {
	// op names the guarded operation (and its target, e.g. the device being deleted), so that
	// stages completed for one request cannot authorise another.
	op string
	// flows are the stage lists offered, each to be completed in order.
	flows [][]string
	// user is the caller when the request carried an access token; m.login.password must then
	// prove this user. Empty when the endpoint is called without a token: the password stage
	// then decides who the user is.
	user id.UserID
}

// uiaResult is a completed authentication.
type uiaResult struct {
	session string
	user    id.UserID // the authenticated user (spec.user, or whoever passed m.login.password)
	data    map[string]string
}

// uia runs one round of user-interactive authentication. It returns the result when a flow is
// complete; otherwise it has written the 401 response and returns (nil, err-from-writing).
// Errors that are not about authentication (a malformed auth dict) come back as *merr.Error.
// The caller calls a.accounts.UIADone(res.session) once the guarded operation succeeded.
func (a *API) uia(c echo.Context, auth *authDict, spec uiaSpec) (*uiaResult, error) {
	var sid string
	if auth != nil {
		sid = auth.Session
	}
	sess := a.accounts.UIASession(sid)
	if !uiaSessionFits(sess.Data, spec) {
		// A session of another operation or user (or a stale one): start afresh rather than
		// let its completed stages authorise this request.
		sess = a.accounts.UIASession("")
	}
	if auth != nil && auth.Type != "" {
		failed, err := a.uiaStage(c, auth, spec, sess.ID, sess.Completed)
		if err != nil {
			return nil, err
		}
		if failed != nil {
			sess = a.accounts.UIASession(sess.ID)
			return nil, c.JSON(http.StatusUnauthorized, uiaChallenge(spec, sess.ID, sess.Completed, failed))
		}
		sess = a.accounts.UIASession(sess.ID)
	}
	if uiaFlowDone(spec.flows, sess.Completed) {
		res := &uiaResult{session: sess.ID, user: spec.user, data: sess.Data}
		if res.user == "" {
			res.user = id.UserID(sess.Data[uiaKeyUser])
		}
		return res, nil
	}
	return nil, c.JSON(http.StatusUnauthorized, uiaChallenge(spec, sess.ID, sess.Completed, nil))
}

// uiaSessionFits reports whether a session's bound data allows it to serve spec.
func uiaSessionFits(data map[string]string, spec uiaSpec) bool {
	if op := data[uiaKeyOp]; op != "" && op != spec.op {
		return false
	}
	if u := data[uiaKeyUser]; u != "" && spec.user != "" && u != spec.user.String() {
		return false
	}
	return true
}

// uiaStage attempts the stage in auth. A failed attempt the client may retry comes back as a
// *merr.Error in failed (for the 401 body); a malformed request comes back in err.
func (a *API) uiaStage(c echo.Context, auth *authDict, spec uiaSpec, sid string, completed []string) (failed *merr.Error, err error) {
	if slices.Contains(completed, auth.Type) {
		return nil, nil // completed stages are not retried; answer with the session's state
	}
	if !uiaStageAllowed(spec.flows, completed, auth.Type) {
		return merr.Forbidden("authentication stage %q is not expected here", auth.Type), nil
	}
	ctx := c.Request().Context()
	data := map[string]string{uiaKeyOp: spec.op}
	switch auth.Type {
	case stageDummy:
	case stagePassword:
		user, err := identifiedUser(auth.Identifier, auth.User)
		if err != nil {
			return nil, err
		}
		lp, err := a.accounts.LocalpartOf(user)
		if err != nil {
			return merr.Forbidden("invalid username or password"), nil
		}
		uid := a.accounts.UserID(lp)
		if spec.user != "" && uid != spec.user {
			// Not a stage to retry: authenticating as someone else is refused outright (403).
			return nil, merr.Forbidden("the identifier does not match the logged-in user")
		}
		if auth.Password == "" {
			return nil, merr.MissingParam("auth.password is required for %s", stagePassword)
		}
		if _, err := a.accounts.CheckPassword(ctx, lp, auth.Password); err != nil {
			if me, ok := merr.As(err); ok && me.Status < 500 {
				return me, nil
			}
			return nil, err
		}
		data[uiaKeyUser] = uid.String()
	case stageRegToken:
		if auth.Token == "" {
			return nil, merr.MissingParam("auth.token is required for %s", stageRegToken)
		}
		ok, err := a.accounts.RegTokenValid(ctx, auth.Token)
		if err != nil {
			return nil, err
		}
		if !ok {
			return merr.Unauthorized("invalid registration token"), nil
		}
		data[uiaKeyRegToken] = auth.Token
	default:
		return merr.Forbidden("authentication stage %q is not supported", auth.Type), nil
	}
	a.accounts.UIAComplete(sid, auth.Type, data)
	return nil, nil
}

// identifiedUser resolves a user identifier (or the deprecated bare `user`) to a user string.
// Third-party identifiers are refused with 403: this server keeps no 3PIDs.
func identifiedUser(ident *userIdentifier, legacyUser string) (string, error) {
	if ident != nil && *ident == (userIdentifier{}) {
		ident = nil // an empty object: fall back to the deprecated field
	}
	if ident == nil {
		if legacyUser == "" {
			return "", merr.MissingParam("identifier is required")
		}
		return legacyUser, nil
	}
	switch ident.Type {
	case "m.id.user":
		if ident.User == "" {
			return "", merr.MissingParam("identifier.user is required")
		}
		return ident.User, nil
	case "m.id.thirdparty", "m.id.phone":
		return "", merr.Forbidden("no account is associated with this third-party identifier")
	case "":
		return "", merr.MissingParam("identifier.type is required")
	default:
		return "", merr.Unknown("unknown identifier type %q", ident.Type)
	}
}

// uiaStageAllowed reports whether stage is the next stage of some flow, given the completed ones.
func uiaStageAllowed(flows [][]string, completed []string, stage string) bool {
	for _, f := range flows {
		for i, s := range f {
			if s == stage {
				if uiaAllCompleted(f[:i], completed) {
					return true
				}
				break
			}
		}
	}
	return false
}

// uiaFlowDone reports whether every stage of some flow is completed.
func uiaFlowDone(flows [][]string, completed []string) bool {
	for _, f := range flows {
		if len(f) > 0 && uiaAllCompleted(f, completed) {
			return true
		}
	}
	return false
}

func uiaAllCompleted(stages, completed []string) bool {
	for _, s := range stages {
		if !slices.Contains(completed, s) {
			return false
		}
	}
	return true
}

// uiaChallenge builds the 401 body.
func uiaChallenge(spec uiaSpec, sid string, completed []string, failed *merr.Error) uiaResponse {
	r := uiaResponse{Params: map[string]any{}, Session: sid}
	for _, f := range spec.flows {
		r.Flows = append(r.Flows, uiaFlow{Stages: f})
	}
	// Report completed stages in flow order, which is stable (the store's set is not).
	for _, f := range spec.flows {
		for _, s := range f {
			if slices.Contains(completed, s) && !slices.Contains(r.Completed, s) {
				r.Completed = append(r.Completed, s)
			}
		}
	}
	if failed != nil {
		r.Errcode, r.Error = failed.Code, failed.Message
	}
	return r
}

// optionalAuth authenticates the request when it carries an access token and lets it through
// without a session when it does not (endpoints whose UIA can identify the user itself).
func (a *API) optionalAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if accessToken(c) == "" {
			return next(c)
		}
		return a.auth(next)(c)
	}
}
