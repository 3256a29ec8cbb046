package clientapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Application services on the client-server API (matrix/appservice does the work): as_token
// authentication with ?user_id= masquerading (auth middleware), registration of namespace
// users (m.login.application_service) and M_EXCLUSIVE for everyone else, /appservice/{id}/ping,
// and user queries when a profile of an unknown namespace user is asked for.

func (a *API) routesAppService(c *echo.Group) {
	c.POST("/v1/appservice/:appserviceId/ping", a.appServicePing, a.auth)
}

// appServiceSession authenticates an as_token: the session is the service's sender, or the
// user named by ?user_id= when it is in the service's user namespaces and registered.
// Nil, nil when tok is not an as_token.
func (a *API) appServiceSession(c echo.Context, tok string) (*accounts.Session, error) {
	if a.deps.AppServices == nil {
		return nil, nil
	}
	as := a.deps.AppServices.ByToken(tok)
	if as == nil {
		return nil, nil
	}
	user := as.Sender
	if q := c.QueryParam("user_id"); q != "" && q != as.Sender.String() {
		lp, hs, err := id.UserID(q).Parse()
		if err != nil {
			return nil, merr.InvalidParam("invalid user_id %q", q)
		}
		if hs != a.accounts.ServerName() || !as.OwnsUser(q) {
			return nil, merr.Exclusive("the application service may not masquerade as %s", q)
		}
		u, err := a.accounts.User(c.Request().Context(), lp)
		if err != nil || u.Deactivated {
			return nil, merr.Forbidden("the application service has not registered %s", q)
		}
		user = id.UserID(q)
	}
	c.Set(appServiceKey, as.ID())
	return &accounts.Session{User: user}, nil
}

const appServiceKey = "hearth.appservice"

// appServiceRegister handles /register for application services (done = true), and refuses
// usernames inside an exclusive namespace to everyone else.
func (a *API) appServiceRegister(c echo.Context, req *registerRequest) (done bool, err error) {
	if a.deps.AppServices == nil {
		if req.Type == "m.login.application_service" {
			return true, merr.Unauthorized("no application services are registered")
		}
		return false, nil
	}
	tok := accessToken(c)
	as := a.deps.AppServices.ByToken(tok)
	if req.Type != "m.login.application_service" {
		if as != nil {
			return true, &merr.Error{Status: http.StatusBadRequest, Code: "M_APPSERVICE_LOGIN_UNSUPPORTED", Message: "application services register with type m.login.application_service"}
		}
		if req.Username != "" && a.deps.AppServices.ExclusiveUser(a.accounts.UserID(strings.ToLower(req.Username)).String()) != nil {
			return true, merr.Exclusive("this user ID is reserved by an application service")
		}
		return false, nil
	}
	if tok == "" {
		return true, merr.MissingToken("missing as_token")
	}
	if as == nil {
		return true, merr.UnknownToken("unknown as_token")
	}
	lp := strings.ToLower(req.Username)
	if lp == "" {
		return true, merr.MissingParam("username is required")
	}
	if !as.OwnsUser(a.accounts.UserID(lp).String()) {
		return true, merr.Exclusive("the user ID is not in the application service's namespaces")
	}
	ctx := c.Request().Context()
	if err := a.accounts.Available(ctx, lp); err != nil {
		return true, err
	}
	if _, err := a.accounts.Register(ctx, lp, "", false); err != nil {
		return true, err
	}
	return true, a.registered(c, lp, req.DeviceID, req.InitialDeviceDisplayName, req.InhibitLogin, req.RefreshToken)
}

func (a *API) appServicePing(c echo.Context) error {
	if a.deps.AppServices == nil {
		return merr.Forbidden("only application services may ping")
	}
	asID, _ := c.Get(appServiceKey).(string)
	if asID == "" || asID != c.Param("appserviceId") {
		return merr.Forbidden("the access token does not belong to application service %q", c.Param("appserviceId"))
	}
	var body struct {
		TxnID string `json:"transaction_id"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	d, err := a.deps.AppServices.Ping(c.Request().Context(), a.deps.AppServices.ByID(asID), body.TxnID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"duration_ms": d.Milliseconds()})
}

// profileOrQueryAS reads a profile; for an unknown user inside an application service's
// namespace it first asks the service (which may create the user) and then looks again.
func (a *API) profileOrQueryAS(ctx context.Context, u id.UserID) (string, string, error) {
	dn, av, err := a.accounts.Profile(ctx, u)
	if err == nil || a.deps.AppServices == nil || u.Homeserver() != a.accounts.ServerName() {
		return dn, av, err
	}
	if e, ok := merr.As(err); !ok || e.Code != "M_NOT_FOUND" {
		if !errors.Is(err, store.ErrNotFound) {
			return dn, av, err
		}
	}
	lp, _, _ := u.Parse()
	if _, uerr := a.accounts.User(ctx, lp); uerr == nil { // exists, just no profile to show
		return dn, av, err
	}
	if a.deps.AppServices.QueryUser(ctx, u.String()) {
		return a.accounts.Profile(ctx, u)
	}
	return dn, av, err
}

// appServiceAliasCheck refuses an alias inside an application service's exclusive alias
// namespace to anyone but that service (M_EXCLUSIVE).
func (a *API) appServiceAliasCheck(c echo.Context, alias string) error {
	if a.deps.AppServices == nil {
		return nil
	}
	owner := a.deps.AppServices.ExclusiveAlias(alias)
	if owner == nil {
		return nil
	}
	if asID, _ := c.Get(appServiceKey).(string); asID == owner.ID() {
		return nil
	}
	return merr.Exclusive("this alias is reserved by an application service")
}
