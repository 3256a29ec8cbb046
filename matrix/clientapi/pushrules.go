package clientapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Push rules, read side: every user has the spec's server-default ruleset (v1.19, "Predefined
// Rules"; the legacy body-matching rules .m.rule.contains_user_name, .contains_display_name and
// .roomnotif were removed from the spec in v1.17 and are not served). User-defined rules and
// enabling/disabling come with the write side.
//
// The JSON is written with local types rather than mautrix's pushrules: its PushAction always
// emits "value" (so {"set_tweak":"highlight"} would become {"set_tweak":"highlight","value":null},
// which some clients read as "no highlight") and its conditions drop empty lists and empty
// patterns that the spec's definitions carry.

// pushRule is the spec's PushRule.
type pushRule struct {
	RuleID     string          `json:"rule_id"`
	Default    bool            `json:"default"`
	Enabled    bool            `json:"enabled"`
	Conditions []pushCondition `json:"conditions,omitzero"` // override and underride rules only
	Pattern    *string         `json:"pattern,omitempty"`   // content rules only
	Actions    []any           `json:"actions"`
}

// pushCondition is the spec's PushCondition.
type pushCondition struct {
	Kind    string  `json:"kind"`
	Key     string  `json:"key,omitempty"`
	Pattern *string `json:"pattern,omitempty"`
	Value   any     `json:"value,omitempty"`
	Is      string  `json:"is,omitempty"`
}

// pushRuleset is the spec's PushRuleset.
type pushRuleset struct {
	Content   []pushRule `json:"content"`
	Override  []pushRule `json:"override"`
	Room      []pushRule `json:"room"`
	Sender    []pushRule `json:"sender"`
	Underride []pushRule `json:"underride"`
}

func (rs *pushRuleset) kind(k string) ([]pushRule, bool) {
	switch k {
	case "content":
		return rs.Content, true
	case "override":
		return rs.Override, true
	case "room":
		return rs.Room, true
	case "sender":
		return rs.Sender, true
	case "underride":
		return rs.Underride, true
	}
	return nil, false
}

func (a *API) routesPushRules(g *echo.Group) {
	a.both(g, http.MethodGet, "/pushrules/", a.getPushRules, a.auth)
	a.both(g, http.MethodGet, "/pushrules/global/", a.getPushRulesGlobal, a.auth)
	a.both(g, http.MethodGet, "/pushrules/global/:kind/:ruleId", a.getPushRule, a.auth)
	a.both(g, http.MethodGet, "/pushrules/global/:kind/:ruleId/enabled", a.getPushRuleEnabled, a.auth)
	a.both(g, http.MethodGet, "/pushrules/global/:kind/:ruleId/actions", a.getPushRuleActions, a.auth)
}

func (a *API) getPushRules(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"global": defaultPushRules(session(c).User)})
}

func (a *API) getPushRulesGlobal(c echo.Context) error {
	return c.JSON(http.StatusOK, defaultPushRules(session(c).User))
}

// findPushRule looks up the rule named by the path.
func findPushRule(c echo.Context) (*pushRule, error) {
	kind, err := accountPathParam(c, "kind")
	if err != nil {
		return nil, err
	}
	ruleID, err := accountPathParam(c, "ruleId")
	if err != nil {
		return nil, err
	}
	rs := defaultPushRules(session(c).User)
	rules, ok := rs.kind(kind)
	if !ok {
		return nil, merr.InvalidParam("unknown push rule kind %q", kind)
	}
	for i := range rules {
		if rules[i].RuleID == ruleID {
			return &rules[i], nil
		}
	}
	return nil, merr.NotFound("push rule not found")
}

func (a *API) getPushRule(c echo.Context) error {
	r, err := findPushRule(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (a *API) getPushRuleEnabled(c echo.Context) error {
	r, err := findPushRule(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"enabled": r.Enabled})
}

func (a *API) getPushRuleActions(c echo.Context) error {
	r, err := findPushRule(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"actions": r.Actions})
}

func pushStrp(s string) *string { return &s }

func pushEventMatch(key, pattern string) pushCondition {
	return pushCondition{Kind: "event_match", Key: key, Pattern: pushStrp(pattern)}
}

func pushTweak(name string, value any) map[string]any {
	t := map[string]any{"set_tweak": name}
	if value != nil {
		t["value"] = value
	}
	return t
}

// defaultPushRules is the spec's server-default ruleset for user, in the spec's order.
func defaultPushRules(user id.UserID) *pushRuleset {
	u := user.String()
	soundDefault := pushTweak("sound", "default")
	highlight := pushTweak("highlight", nil)
	rule := func(ruleID string, enabled bool, conds []pushCondition, actions ...any) pushRule {
		if conds == nil {
			conds = []pushCondition{}
		}
		if actions == nil {
			actions = []any{}
		}
		return pushRule{RuleID: ruleID, Default: true, Enabled: enabled, Conditions: conds, Actions: actions}
	}
	return &pushRuleset{
		Content: []pushRule{},
		Override: []pushRule{
			rule(".m.rule.master", false, nil),
			rule(".m.rule.suppress_notices", true, []pushCondition{pushEventMatch("content.msgtype", "m.notice")}),
			rule(".m.rule.invite_for_me", true, []pushCondition{
				pushEventMatch("type", "m.room.member"),
				pushEventMatch("content.membership", "invite"),
				pushEventMatch("state_key", u),
			}, "notify", soundDefault),
			rule(".m.rule.member_event", true, []pushCondition{pushEventMatch("type", "m.room.member")}),
			rule(".m.rule.is_user_mention", true, []pushCondition{
				{Kind: "event_property_contains", Key: `content.m\.mentions.user_ids`, Value: u},
			}, "notify", soundDefault, highlight),
			rule(".m.rule.is_room_mention", true, []pushCondition{
				{Kind: "event_property_is", Key: `content.m\.mentions.room`, Value: true},
				{Kind: "sender_notification_permission", Key: "room"},
			}, "notify", highlight),
			rule(".m.rule.tombstone", true, []pushCondition{
				pushEventMatch("type", "m.room.tombstone"),
				pushEventMatch("state_key", ""),
			}, "notify", highlight),
			rule(".m.rule.reaction", true, []pushCondition{pushEventMatch("type", "m.reaction")}),
			rule(".m.rule.room.server_acl", true, []pushCondition{
				pushEventMatch("type", "m.room.server_acl"),
				pushEventMatch("state_key", ""),
			}),
			rule(".m.rule.suppress_edits", true, []pushCondition{
				{Kind: "event_property_is", Key: `content.m\.relates_to.rel_type`, Value: "m.replace"},
			}),
		},
		Room:   []pushRule{},
		Sender: []pushRule{},
		Underride: []pushRule{
			rule(".m.rule.call", true, []pushCondition{pushEventMatch("type", "m.call.invite")}, "notify", pushTweak("sound", "ring")),
			rule(".m.rule.encrypted_room_one_to_one", true, []pushCondition{
				{Kind: "room_member_count", Is: "2"},
				pushEventMatch("type", "m.room.encrypted"),
			}, "notify", soundDefault),
			rule(".m.rule.room_one_to_one", true, []pushCondition{
				{Kind: "room_member_count", Is: "2"},
				pushEventMatch("type", "m.room.message"),
			}, "notify", soundDefault),
			rule(".m.rule.message", true, []pushCondition{pushEventMatch("type", "m.room.message")}, "notify"),
			rule(".m.rule.encrypted", true, []pushCondition{pushEventMatch("type", "m.room.encrypted")}, "notify"),
		},
	}
}
