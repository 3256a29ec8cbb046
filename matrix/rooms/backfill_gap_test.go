package rooms

import (
	"testing"

	"github.com/hearth-home/hearth/matrix/store"
)

func TestGapTokens(t *testing.T) {
	tok := gapToken(42, 7)
	if tok != "g42_7" {
		t.Fatalf("gapToken = %q", tok)
	}
	c, err := parseCursor(tok)
	if err != nil || c != (cursor{kind: 'g', pos: 42, seq: 7}) {
		t.Fatalf("parseCursor(%q) = %+v, %v", tok, c, err)
	}
	// Callers that want a stream position read a gap token as the position before the gap.
	if p, err := ParseToken(tok); err != nil || p != 41 {
		t.Fatalf("ParseToken(%q) = %d, %v", tok, p, err)
	}
	for _, good := range []string{"t5", "s5_1_0", "b3", "g9_0"} {
		if err := ValidPaginationToken(good); err != nil {
			t.Errorf("ValidPaginationToken(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"g", "g9", "g_1", "g0_1", "gx_1", "g9_x", "bx", "x1", ""} {
		if err := ValidPaginationToken(bad); err == nil {
			t.Errorf("ValidPaginationToken(%q) accepted", bad)
		}
		if _, err := parseCursor(bad); err == nil {
			t.Errorf("parseCursor(%q) accepted", bad)
		}
	}
}

func TestTokenBefore(t *testing.T) {
	plain := &Event{Pos: 10, Rec: &store.EventRecord{}}
	if got := TokenBefore(plain); got != "t9" {
		t.Fatalf("TokenBefore(plain) = %q", got)
	}
	gap := &Event{Pos: 10, Rec: &store.EventRecord{Flags: store.FlagGap | store.FlagViaFederation}}
	if got := TokenBefore(gap); got != "g10_0" {
		t.Fatalf("TokenBefore(gap) = %q", got)
	}
}
