package sync

import "testing"

// A parked sync moves its window start up to what its last empty build read, never back, and
// keeps the typing and presence serials it was given.
func TestTokenAdvanced(t *testing.T) {
	tok := &token{pos: 10, typing: 3, presence: 4}
	if a := tok.advanced(25); a.pos != 25 || a.typing != 3 || a.presence != 4 {
		t.Fatalf("advanced(25) = %+v", *a)
	}
	if a := tok.advanced(7); a.pos != 10 {
		t.Fatalf("advanced(7) moved back to %d", a.pos)
	}
	if tok.pos != 10 {
		t.Fatalf("advanced changed the original: %+v", *tok)
	}
	back, err := parseToken(tok.advanced(99).String())
	if err != nil || back != (token{pos: 99, typing: 3, presence: 4}) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}
