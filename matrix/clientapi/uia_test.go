package clientapi

import (
	"encoding/hex"
	"encoding/json"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

func TestUIAStageAllowed(t *testing.T) {
	flows := [][]string{{"a", "b"}, {"c"}}
	for _, tc := range []struct {
		completed []string
		stage     string
		want      bool
	}{
		{nil, "a", true},
		{nil, "b", false}, // out of order
		{nil, "c", true},
		{[]string{"a"}, "b", true},
		{nil, "d", false},
		{[]string{"c"}, "b", false},
	} {
		if got := uiaStageAllowed(flows, tc.completed, tc.stage); got != tc.want {
			t.Errorf("stage %q after %v: got %v, want %v", tc.stage, tc.completed, got, tc.want)
		}
	}
}

func TestUIAFlowDone(t *testing.T) {
	flows := [][]string{{"a", "b"}, {"c"}}
	for _, tc := range []struct {
		completed []string
		want      bool
	}{
		{nil, false},
		{[]string{"a"}, false},
		{[]string{"b", "a"}, true},
		{[]string{"c"}, true},
	} {
		if got := uiaFlowDone(flows, tc.completed); got != tc.want {
			t.Errorf("completed %v: got %v, want %v", tc.completed, got, tc.want)
		}
	}
	if uiaFlowDone([][]string{{}}, nil) {
		t.Error("an empty flow must not count as done")
	}
}

func TestUIAChallengeShape(t *testing.T) {
	spec := uiaSpec{flows: [][]string{{stagePassword}}}
	for _, tc := range []struct {
		name      string
		completed []string
		failed    *merr.Error
		want      string
	}{
		{"first", nil, nil, `{"flows":[{"stages":["m.login.password"]}],"params":{},"session":"S"}`},
		{"failed", nil, merr.Forbidden("Invalid password"), `{"errcode":"M_FORBIDDEN","error":"Invalid password","flows":[{"stages":["m.login.password"]}],"params":{},"session":"S"}`},
		{"completed", []string{stagePassword}, nil, `{"completed":["m.login.password"],"flows":[{"stages":["m.login.password"]}],"params":{},"session":"S"}`},
	} {
		b, _ := json.Marshal(uiaChallenge(spec, "S", tc.completed, tc.failed))
		if string(b) != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, b, tc.want)
		}
	}
}

func TestUIASessionFits(t *testing.T) {
	spec := uiaSpec{op: "x", user: "@a:hs"}
	for _, tc := range []struct {
		data map[string]string
		want bool
	}{
		{map[string]string{}, true},
		{map[string]string{uiaKeyOp: "x", uiaKeyUser: "@a:hs"}, true},
		{map[string]string{uiaKeyOp: "y"}, false},
		{map[string]string{uiaKeyOp: "x", uiaKeyUser: "@b:hs"}, false},
		{map[string]string{uiaKeyOp: synapseNonceOp}, false},
	} {
		if got := uiaSessionFits(tc.data, spec); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.data, got, tc.want)
		}
	}
}

func TestIdentifiedUser(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ident  *userIdentifier
		legacy string
		want   string
		code   string
	}{
		{"m.id.user", &userIdentifier{Type: "m.id.user", User: "alice"}, "", "alice", ""},
		{"legacy", nil, "@alice:hs", "@alice:hs", ""},
		{"empty identifier falls back", &userIdentifier{}, "alice", "alice", ""},
		{"nothing", nil, "", "", "M_MISSING_PARAM"},
		{"no user", &userIdentifier{Type: "m.id.user"}, "", "", "M_MISSING_PARAM"},
		{"3pid", &userIdentifier{Type: "m.id.thirdparty", Medium: "email", Address: "a@b"}, "", "", "M_FORBIDDEN"},
		{"phone", &userIdentifier{Type: "m.id.phone", Country: "GB", Phone: "1"}, "", "", "M_FORBIDDEN"},
		{"unknown", &userIdentifier{Type: "m.id.magic", User: "x"}, "", "", "M_UNKNOWN"},
	} {
		got, err := identifiedUser(tc.ident, tc.legacy)
		code := ""
		if me, ok := merr.As(err); ok {
			code = me.Code
		} else if err != nil {
			t.Fatalf("%s: non-Matrix error %v", tc.name, err)
		}
		if got != tc.want || code != tc.code {
			t.Errorf("%s: got %q %q, want %q %q", tc.name, got, code, tc.want, tc.code)
		}
	}
}

func TestSynapseMAC(t *testing.T) {
	// Expected values computed independently with Python's hmac module.
	for _, tc := range []struct {
		admin    bool
		userType string
		want     string
	}{
		{false, "", "42e32623fe124933c326f9d2d67ff7c617915a10"},
		{true, "", "dc5ed98b283077684552e3f72d67f26b3366bf58"},
		{true, "bot", "403f9ef63d482b2509f8dd394af982a107ca97eb"},
	} {
		got := hex.EncodeToString(synapseMAC("secret", "abc", "alice", "pw", tc.admin, tc.userType))
		if got != tc.want {
			t.Errorf("admin=%v user_type=%q: got %s, want %s", tc.admin, tc.userType, got, tc.want)
		}
	}
}

func TestDefaultPushRulesShape(t *testing.T) {
	rs := defaultPushRules(id.UserID("@alice:hs"))
	ids := func(rules []pushRule) []string {
		var out []string
		for _, r := range rules {
			out = append(out, r.RuleID)
		}
		return out
	}
	wantOverride := []string{".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event",
		".m.rule.is_user_mention", ".m.rule.is_room_mention", ".m.rule.tombstone", ".m.rule.reaction",
		".m.rule.room.server_acl", ".m.rule.suppress_edits", ".org.matrix.msc3930.rule.poll_response"}
	wantUnderride := []string{".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
		".org.matrix.msc3930.rule.poll_start_one_to_one", ".org.matrix.msc3930.rule.poll_start",
		".org.matrix.msc3930.rule.poll_end_one_to_one", ".org.matrix.msc3930.rule.poll_end",
		".m.rule.message", ".m.rule.encrypted"}
	if got, _ := json.Marshal(ids(rs.Override)); string(got) != uiaTestJSON(wantOverride) {
		t.Errorf("override order %s", got)
	}
	if got, _ := json.Marshal(ids(rs.Underride)); string(got) != uiaTestJSON(wantUnderride) {
		t.Errorf("underride order %s", got)
	}
	// Each definition, compared with the spec's JSON for the rule (key order aside).
	for _, tc := range []struct {
		rule pushRule
		want string
	}{
		{rs.Override[0], `{"rule_id":".m.rule.master","default":true,"enabled":false,"conditions":[],"actions":[]}`},
		{rs.Override[2], `{"rule_id":".m.rule.invite_for_me","default":true,"enabled":true,"conditions":[
			{"key":"type","kind":"event_match","pattern":"m.room.member"},
			{"key":"content.membership","kind":"event_match","pattern":"invite"},
			{"key":"state_key","kind":"event_match","pattern":"@alice:hs"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"}]}`},
		{rs.Override[4], `{"rule_id":".m.rule.is_user_mention","default":true,"enabled":true,"conditions":[
			{"kind":"event_property_contains","key":"content.m\\.mentions.user_ids","value":"@alice:hs"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]}`},
		{rs.Override[5], `{"rule_id":".m.rule.is_room_mention","default":true,"enabled":true,"conditions":[
			{"kind":"event_property_is","key":"content.m\\.mentions.room","value":true},
			{"kind":"sender_notification_permission","key":"room"}],
			"actions":["notify",{"set_tweak":"highlight"}]}`},
		{rs.Override[6], `{"rule_id":".m.rule.tombstone","default":true,"enabled":true,"conditions":[
			{"kind":"event_match","key":"type","pattern":"m.room.tombstone"},
			{"kind":"event_match","key":"state_key","pattern":""}],
			"actions":["notify",{"set_tweak":"highlight"}]}`},
		{rs.Override[9], `{"rule_id":".m.rule.suppress_edits","default":true,"enabled":true,"conditions":[
			{"kind":"event_property_is","key":"content.m\\.relates_to.rel_type","value":"m.replace"}],"actions":[]}`},
		{rs.Underride[0], `{"rule_id":".m.rule.call","default":true,"enabled":true,"conditions":[
			{"key":"type","kind":"event_match","pattern":"m.call.invite"}],
			"actions":["notify",{"set_tweak":"sound","value":"ring"}]}`},
		{rs.Underride[1], `{"rule_id":".m.rule.encrypted_room_one_to_one","default":true,"enabled":true,"conditions":[
			{"kind":"room_member_count","is":"2"},{"kind":"event_match","key":"type","pattern":"m.room.encrypted"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"}]}`},
		{rs.Underride[3], `{"rule_id":".org.matrix.msc3930.rule.poll_start_one_to_one","default":true,"enabled":true,"conditions":[
			{"kind":"room_member_count","is":"2"},{"kind":"event_match","key":"type","pattern":"org.matrix.msc3381.poll.start"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"}]}`},
		{rs.Override[10], `{"rule_id":".org.matrix.msc3930.rule.poll_response","default":true,"enabled":true,"conditions":[
			{"kind":"event_match","key":"type","pattern":"org.matrix.msc3381.poll.response"}],"actions":[]}`},
		{rs.Underride[7], `{"rule_id":".m.rule.message","default":true,"enabled":true,"conditions":[
			{"kind":"event_match","key":"type","pattern":"m.room.message"}],"actions":["notify"]}`},
	} {
		got, _ := json.Marshal(tc.rule)
		if uiaCanonJSON(t, string(got)) != uiaCanonJSON(t, tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.rule.RuleID, got, uiaCanonJSON(t, tc.want))
		}
	}
	b, _ := json.Marshal(rs)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"content", "override", "room", "sender", "underride"} {
		if len(m[k]) == 0 || m[k][0] != '[' {
			t.Errorf("ruleset %s is not an array: %s", k, m[k])
		}
	}
}

func uiaTestJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// uiaCanonJSON re-encodes JSON so that key order and whitespace do not matter.
func uiaCanonJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad JSON %s: %v", s, err)
	}
	return uiaTestJSON(v)
}
