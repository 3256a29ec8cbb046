package clientapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/push"
)

// Push rules, pushers and notifications (matrix/push). Every user has the spec's server-default
// ruleset plus their own rules; changes are mirrored to the m.push_rules account data.

func (a *API) routesPushRules(g *echo.Group) {
	a.both(g, http.MethodGet, "/pushrules/", a.getPushRules, a.auth)
	a.both(g, http.MethodGet, "/pushrules/global/", a.getPushRulesGlobal, a.auth)
	a.both(g, http.MethodGet, "/pushrules/global/:kind/:ruleId", a.getPushRule, a.auth)
	a.both(g, http.MethodPut, "/pushrules/global/:kind/:ruleId", a.putPushRule, a.auth)
	a.both(g, http.MethodDelete, "/pushrules/global/:kind/:ruleId", a.deletePushRule, a.auth)
	a.both(g, http.MethodGet, "/pushrules/global/:kind/:ruleId/enabled", a.getPushRuleEnabled, a.auth)
	a.both(g, http.MethodPut, "/pushrules/global/:kind/:ruleId/enabled", a.putPushRuleEnabled, a.auth)
	a.both(g, http.MethodGet, "/pushrules/global/:kind/:ruleId/actions", a.getPushRuleActions, a.auth)
	a.both(g, http.MethodPut, "/pushrules/global/:kind/:ruleId/actions", a.putPushRuleActions, a.auth)
	a.both(g, http.MethodGet, "/pushers", a.getPushers, a.auth)
	a.both(g, http.MethodPost, "/pushers/set", a.setPusher, a.auth)
	a.both(g, http.MethodGet, "/notifications", a.getNotifications, a.auth)
}

func (a *API) pushService() (*push.Service, error) {
	if a.deps.Push == nil {
		return nil, merr.Unrecognized("push is not available")
	}
	return a.deps.Push, nil
}

func (a *API) userRules(c echo.Context) (*push.Ruleset, error) {
	if a.deps.Push == nil {
		return push.Defaults(session(c).User), nil
	}
	return a.deps.Push.Rules(c.Request().Context(), session(c).User)
}

func (a *API) getPushRules(c echo.Context) error {
	rs, err := a.userRules(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"global": rs})
}

func (a *API) getPushRulesGlobal(c echo.Context) error {
	rs, err := a.userRules(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rs)
}

// pushRulePath reads the kind and rule ID from the path.
func pushRulePath(c echo.Context) (kind, ruleID string, err error) {
	if kind, err = accountPathParam(c, "kind"); err != nil {
		return "", "", err
	}
	if ruleID, err = accountPathParam(c, "ruleId"); err != nil {
		return "", "", err
	}
	if !push.ValidKind(kind) {
		return "", "", merr.InvalidParam("unknown push rule kind %q", kind)
	}
	return kind, ruleID, nil
}

// findPushRule looks up the rule named by the path. A kind this server does not have is "not
// found" rather than a bad request: clients probe for rules of newer kinds (MSC4306's
// postcontent) and skip them on a 404.
func (a *API) findPushRule(c echo.Context) (*push.Rule, error) {
	kind, ruleID, err := pushRulePath(c)
	if me, ok := merr.As(err); ok && me.Code == "M_INVALID_PARAM" && c.Request().Method == http.MethodGet {
		return nil, merr.NotFound("no push rule of kind %q here", c.Param("kind"))
	}
	if err != nil {
		return nil, err
	}
	rs, err := a.userRules(c)
	if err != nil {
		return nil, err
	}
	r := rs.Find(kind, ruleID)
	if r == nil {
		return nil, merr.NotFound("push rule not found")
	}
	return r, nil
}

func (a *API) getPushRule(c echo.Context) error {
	r, err := a.findPushRule(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (a *API) getPushRuleEnabled(c echo.Context) error {
	r, err := a.findPushRule(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"enabled": r.Enabled})
}

func (a *API) getPushRuleActions(c echo.Context) error {
	r, err := a.findPushRule(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"actions": r.Actions})
}

func (a *API) putPushRule(c echo.Context) error {
	ps, err := a.pushService()
	if err != nil {
		return err
	}
	kind, ruleID, err := pushRulePath(c)
	if err != nil {
		return err
	}
	body, err := readObject(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	if err := ps.PutRule(c.Request().Context(), session(c).User, kind, ruleID, q.Get("before"), q.Get("after"), body); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) deletePushRule(c echo.Context) error {
	ps, err := a.pushService()
	if err != nil {
		return err
	}
	kind, ruleID, err := pushRulePath(c)
	if err != nil {
		return err
	}
	if err := ps.DeleteRule(c.Request().Context(), session(c).User, kind, ruleID); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) putPushRuleEnabled(c echo.Context) error {
	ps, err := a.pushService()
	if err != nil {
		return err
	}
	kind, ruleID, err := pushRulePath(c)
	if err != nil {
		return err
	}
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body.Enabled == nil {
		return merr.MissingParam("enabled is required")
	}
	if err := ps.SetEnabled(c.Request().Context(), session(c).User, kind, ruleID, *body.Enabled); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) putPushRuleActions(c echo.Context) error {
	ps, err := a.pushService()
	if err != nil {
		return err
	}
	kind, ruleID, err := pushRulePath(c)
	if err != nil {
		return err
	}
	var body struct {
		Actions []any `json:"actions"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if err := ps.SetActions(c.Request().Context(), session(c).User, kind, ruleID, body.Actions); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) getPushers(c echo.Context) error {
	if a.deps.Push == nil {
		return c.JSON(http.StatusOK, map[string]any{"pushers": []any{}})
	}
	ps, err := a.deps.Push.Pushers(c.Request().Context(), session(c).User)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"pushers": ps})
}

func (a *API) setPusher(c echo.Context) error {
	ps, err := a.pushService()
	if err != nil {
		return err
	}
	var body json.RawMessage
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if err := ps.SetPusher(c.Request().Context(), session(c).User, session(c).Device, body); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) getNotifications(c echo.Context) error {
	ps, err := a.pushService()
	if err != nil {
		return err
	}
	q := c.QueryParams()
	limit := 0
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 0 {
			return merr.InvalidParam("invalid limit")
		}
	}
	only := q.Get("only")
	page, err := ps.Notifications(c.Request().Context(), session(c).User, q.Get("from"), limit, only == "highlight")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

// pushRule and defaultPushRules keep the older names used by uia_test.go.
type pushRule = push.Rule

func defaultPushRules(user id.UserID) *push.Ruleset { return push.Defaults(user) }
