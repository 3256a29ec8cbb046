package rooms

import (
	"encoding/json"
	"testing"
)

func TestPlainTopic(t *testing.T) {
	for _, c := range []struct{ content, want string }{
		{``, ""},
		{`{"topic": "legacy"}`, "legacy"},
		{`{"topic": 5}`, ""},
		{`{"topic": "legacy", "m.topic": {"m.text": [{"mimetype": "text/html", "body": "<b>x</b>"}, {"body": "plain"}]}}`, "plain"},
		{`{"topic": "legacy", "m.topic": {"m.text": [{"mimetype": "text/plain", "body": "p"}]}}`, "p"},
		{`{"topic": "legacy", "m.topic": {"m.text": [{"mimetype": "text/html", "body": "<b>x</b>"}]}}`, ""},
		{`{"topic": "legacy", "m.topic": {"m.text": []}}`, "legacy"},
		{`not json`, ""},
	} {
		if got := PlainTopic(json.RawMessage(c.content)); got != c.want {
			t.Errorf("PlainTopic(%s) = %q, want %q", c.content, got, c.want)
		}
	}
}

func TestMatchSummary(t *testing.T) {
	space := "m.space"
	s := &Summary{RoomID: "!a:x", Name: "Kitchen", Topic: "Cooking", CanonicalAlias: "#k:x"}
	sp := &Summary{RoomID: "!b:x", Name: "Home", RoomType: "m.space"}
	for _, c := range []struct {
		sum   *Summary
		term  string
		types []*string
		want  bool
	}{
		{s, "", nil, true},
		{s, "cook", nil, true},
		{s, "#k:", nil, true},
		{s, "garden", nil, false},
		{s, "", []*string{nil}, true},
		{s, "", []*string{&space}, false},
		{sp, "", []*string{&space}, true},
		{sp, "", []*string{nil}, false},
		{sp, "home", []*string{nil, &space}, true},
	} {
		if got := matchSummary(c.sum, c.term, c.types); got != c.want {
			t.Errorf("matchSummary(%s, %q, %d types) = %v", c.sum.RoomID, c.term, len(c.types), got)
		}
	}
}
