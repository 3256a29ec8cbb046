package push

import (
	"encoding/json"

	"maunium.net/go/mautrix/id"
)

// The JSON is written with local types rather than mautrix's pushrules: its PushAction always
// emits "value" (so {"set_tweak":"highlight"} would become {"set_tweak":"highlight","value":null},
// which some clients read as "no highlight") and its conditions drop empty lists and empty
// patterns that the spec's definitions carry. Evaluation converts to mautrix's types.

// Rule is the spec's PushRule.
type Rule struct {
	RuleID     string      `json:"rule_id"`
	Default    bool        `json:"default"`
	Enabled    bool        `json:"enabled"`
	Conditions []Condition `json:"conditions,omitzero"` // override and underride rules only
	Pattern    *string     `json:"pattern,omitempty"`   // content rules only
	Actions    []any       `json:"actions"`
}

// Condition is the spec's PushCondition.
type Condition struct {
	Kind    string  `json:"kind"`
	Key     string  `json:"key,omitempty"`
	Pattern *string `json:"pattern,omitempty"`
	Value   any     `json:"value,omitzero"`
	Is      string  `json:"is,omitempty"`
	RelType string  `json:"rel_type,omitempty"`
}

// Ruleset is the spec's PushRuleset.
type Ruleset struct {
	Content   []Rule `json:"content"`
	Override  []Rule `json:"override"`
	Room      []Rule `json:"room"`
	Sender    []Rule `json:"sender"`
	Underride []Rule `json:"underride"`
}

// Kinds lists the rule kinds.
var Kinds = []string{"override", "content", "room", "sender", "underride"}

// ValidKind reports whether k names a rule kind.
func ValidKind(k string) bool {
	switch k {
	case "content", "override", "room", "sender", "underride":
		return true
	}
	return false
}

// Kind returns the rules of kind k.
func (rs *Ruleset) Kind(k string) []Rule {
	switch k {
	case "content":
		return rs.Content
	case "override":
		return rs.Override
	case "room":
		return rs.Room
	case "sender":
		return rs.Sender
	case "underride":
		return rs.Underride
	}
	return nil
}

func (rs *Ruleset) set(k string, rules []Rule) {
	switch k {
	case "content":
		rs.Content = rules
	case "override":
		rs.Override = rules
	case "room":
		rs.Room = rules
	case "sender":
		rs.Sender = rules
	case "underride":
		rs.Underride = rules
	}
}

// Find returns the rule of kind k with the ID, or nil.
func (rs *Ruleset) Find(k, ruleID string) *Rule {
	rules := rs.Kind(k)
	for i := range rules {
		if rules[i].RuleID == ruleID {
			return &rules[i]
		}
	}
	return nil
}

// userRules is what is stored per user: the user's own rules in priority order per kind and the
// changes made to server-default rules (keyed by kind + "/" + rule ID).
type userRules struct {
	Rules     map[string][]Rule   `json:"rules,omitempty"`
	Overrides map[string]override `json:"overrides,omitempty"`
}

type override struct {
	Enabled *bool `json:"enabled,omitempty"`
	Actions []any `json:"actions,omitempty"`
}

// merge builds the user's effective ruleset: in the override kind .m.rule.master first, then
// the user's rules, then the other defaults; in the other kinds the user's rules before the
// defaults (the same order Synapse uses).
func merge(def *Ruleset, ur *userRules) *Ruleset {
	out := &Ruleset{}
	for _, k := range Kinds {
		defs := def.Kind(k)
		for i := range defs {
			if o, ok := ur.Overrides[k+"/"+defs[i].RuleID]; ok {
				if o.Enabled != nil {
					defs[i].Enabled = *o.Enabled
				}
				if o.Actions != nil {
					defs[i].Actions = o.Actions
				}
			}
		}
		own := ur.Rules[k]
		rules := make([]Rule, 0, len(defs)+len(own))
		if k == "override" && len(defs) > 0 && defs[0].RuleID == ".m.rule.master" {
			rules = append(rules, defs[0])
			defs = defs[1:]
		}
		rules = append(rules, own...)
		rules = append(rules, defs...)
		out.set(k, rules)
	}
	return out
}

func strp(s string) *string { return &s }

func eventMatch(key, pattern string) Condition {
	return Condition{Kind: "event_match", Key: key, Pattern: strp(pattern)}
}

func tweak(name string, value any) map[string]any {
	t := map[string]any{"set_tweak": name}
	if value != nil {
		t["value"] = value
	}
	return t
}

// Defaults is the spec's server-default ruleset for user, in the spec's order (v1.19,
// "Predefined Rules"), with MSC3930's poll rules where Synapse places them. The legacy
// body-matching rules .m.rule.contains_user_name, .contains_display_name and .roomnotif were
// removed from the spec in v1.17: see AddLegacyMentionRules for servers that still want them.
func Defaults(user id.UserID) *Ruleset {
	u := user.String()
	soundDefault := tweak("sound", "default")
	highlight := tweak("highlight", nil)
	rule := func(ruleID string, enabled bool, conds []Condition, actions ...any) Rule {
		if conds == nil {
			conds = []Condition{}
		}
		if actions == nil {
			actions = []any{}
		}
		return Rule{RuleID: ruleID, Default: true, Enabled: enabled, Conditions: conds, Actions: actions}
	}
	return &Ruleset{
		Content: []Rule{},
		Override: []Rule{
			rule(".m.rule.master", false, nil),
			rule(".m.rule.suppress_notices", true, []Condition{eventMatch("content.msgtype", "m.notice")}),
			rule(".m.rule.invite_for_me", true, []Condition{
				eventMatch("type", "m.room.member"),
				eventMatch("content.membership", "invite"),
				eventMatch("state_key", u),
			}, "notify", soundDefault),
			rule(".m.rule.member_event", true, []Condition{eventMatch("type", "m.room.member")}),
			rule(".m.rule.is_user_mention", true, []Condition{
				{Kind: "event_property_contains", Key: `content.m\.mentions.user_ids`, Value: u},
			}, "notify", soundDefault, highlight),
			rule(".m.rule.is_room_mention", true, []Condition{
				{Kind: "event_property_is", Key: `content.m\.mentions.room`, Value: true},
				{Kind: "sender_notification_permission", Key: "room"},
			}, "notify", highlight),
			rule(".m.rule.tombstone", true, []Condition{
				eventMatch("type", "m.room.tombstone"),
				eventMatch("state_key", ""),
			}, "notify", highlight),
			rule(".m.rule.reaction", true, []Condition{eventMatch("type", "m.reaction")}),
			rule(".m.rule.room.server_acl", true, []Condition{
				eventMatch("type", "m.room.server_acl"),
				eventMatch("state_key", ""),
			}),
			rule(".m.rule.suppress_edits", true, []Condition{
				{Kind: "event_property_is", Key: `content.m\.relates_to.rel_type`, Value: "m.replace"},
			}),
			// MSC3930 (polls, unstable; Synapse serves the same): votes never notify.
			rule(".org.matrix.msc3930.rule.poll_response", true, []Condition{eventMatch("type", "org.matrix.msc3381.poll.response")}),
		},
		Room:   []Rule{},
		Sender: []Rule{},
		Underride: []Rule{
			rule(".m.rule.call", true, []Condition{eventMatch("type", "m.call.invite")}, "notify", tweak("sound", "ring")),
			rule(".m.rule.encrypted_room_one_to_one", true, []Condition{
				{Kind: "room_member_count", Is: "2"},
				eventMatch("type", "m.room.encrypted"),
			}, "notify", soundDefault),
			rule(".m.rule.room_one_to_one", true, []Condition{
				{Kind: "room_member_count", Is: "2"},
				eventMatch("type", "m.room.message"),
			}, "notify", soundDefault),
			// MSC3930: a poll's start and end notify like a message (polls are not
			// m.room.message, so without these no client would be told of one).
			rule(".org.matrix.msc3930.rule.poll_start_one_to_one", true, []Condition{
				{Kind: "room_member_count", Is: "2"},
				eventMatch("type", "org.matrix.msc3381.poll.start"),
			}, "notify", soundDefault),
			rule(".org.matrix.msc3930.rule.poll_start", true, []Condition{eventMatch("type", "org.matrix.msc3381.poll.start")}, "notify"),
			rule(".org.matrix.msc3930.rule.poll_end_one_to_one", true, []Condition{
				{Kind: "room_member_count", Is: "2"},
				eventMatch("type", "org.matrix.msc3381.poll.end"),
			}, "notify", soundDefault),
			rule(".org.matrix.msc3930.rule.poll_end", true, []Condition{eventMatch("type", "org.matrix.msc3381.poll.end")}, "notify"),
			rule(".m.rule.message", true, []Condition{eventMatch("type", "m.room.message")}, "notify"),
			rule(".m.rule.encrypted", true, []Condition{eventMatch("type", "m.room.encrypted")}, "notify"),
		},
	}
}

func decodeUserRules(b json.RawMessage) (*userRules, error) {
	ur := &userRules{}
	if len(b) == 0 {
		return ur, nil
	}
	if err := json.Unmarshal(b, ur); err != nil {
		return nil, err
	}
	return ur, nil
}

// Legacy mention rule IDs (spec v1.16 and earlier, removed in v1.17 by MSC4210).
const (
	ruleContainsUserName    = ".m.rule.contains_user_name"
	ruleContainsDisplayName = ".m.rule.contains_display_name"
	ruleRoomNotif           = ".m.rule.roomnotif"
)

// AddLegacyMentionRules puts the body-matching mention rules of spec v1.16 back into a
// default ruleset, where v1.16 had them: messages from clients and bridges that do not send
// m.mentions (IRC bridges, older clients) then still highlight a user whose name they contain.
// As in v1.7-v1.16 they apply only to events without m.mentions (mautrix's evaluator skips
// them for those).
func AddLegacyMentionRules(rs *Ruleset, user id.UserID) {
	soundDefault := tweak("sound", "default")
	highlight := tweak("highlight", nil)
	localpart := user.Localpart()
	rs.Content = append(rs.Content, Rule{
		RuleID: ruleContainsUserName, Default: true, Enabled: true, Pattern: &localpart,
		Actions: []any{"notify", soundDefault, highlight},
	})
	atSign := "@room"
	var out []Rule
	for _, r := range rs.Override {
		out = append(out, r)
		switch r.RuleID {
		case ".m.rule.is_user_mention":
			out = append(out, Rule{
				RuleID: ruleContainsDisplayName, Default: true, Enabled: true,
				Conditions: []Condition{{Kind: "contains_display_name"}},
				Actions:    []any{"notify", soundDefault, highlight},
			})
		case ".m.rule.is_room_mention":
			out = append(out, Rule{
				RuleID: ruleRoomNotif, Default: true, Enabled: true,
				Conditions: []Condition{
					{Kind: "event_match", Key: "content.body", Pattern: &atSign},
					{Kind: "sender_notification_permission", Key: "room"},
				},
				Actions: []any{"notify", highlight},
			})
		}
	}
	rs.Override = out
}
