package ignore

import (
	"encoding/json"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

func TestValidate(t *testing.T) {
	owner := id.UserID("@me:x")
	for _, c := range []struct {
		content, code string
	}{
		{`{"ignored_users":{}}`, ""},
		{`{"ignored_users":{"@a:x":{},"@b:y":{"future":1}}}`, ""},
		{`{}`, "M_BAD_JSON"},
		{`{"ignored_users":null}`, "M_BAD_JSON"},
		{`{"ignored_users":[]}`, "M_BAD_JSON"},
		{`{"ignored_users":{"a":{}}}`, "M_BAD_JSON"},
		{`{"ignored_users":{"@a:x":[]}}`, "M_BAD_JSON"},
		{`{"ignored_users":{"@a:x":null}}`, "M_BAD_JSON"},
		{`{"ignored_users":{"@me:x":{}}}`, "M_INVALID_PARAM"},
	} {
		err := Validate(owner, json.RawMessage(c.content))
		got := ""
		if me, ok := merr.As(err); ok {
			got = me.Code
		} else if err != nil {
			got = err.Error()
		}
		if got != c.code {
			t.Errorf("Validate(%s) = %q, want %q", c.content, got, c.code)
		}
	}
}

func TestParseAndHides(t *testing.T) {
	s := Parse(json.RawMessage(`{"ignored_users":{"@a:x":{}}}`))
	if !s.Has("@a:x") || s.Has("@b:x") {
		t.Fatalf("Has: %v", s)
	}
	if !s.Hides("@a:x", false) || s.Hides("@a:x", true) || s.Hides("@b:x", false) {
		t.Fatal("Hides: state events are never hidden, others' events neither")
	}
	var none Set
	if none.Hides("@a:x", false) || Parse(json.RawMessage(`garbage`)) != nil {
		t.Fatal("the empty set hides nothing")
	}
}
