package appservice

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeReg(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

const regA = `id: a
url: http://127.0.0.1:1
as_token: ta
hs_token: ha
sender_localpart: abot
namespaces:
  users:
    - exclusive: true
      regex: '@a_.*:ex\.org'
    - exclusive: false
      regex: '@shared_.*:ex\.org'
  aliases:
    - exclusive: true
      regex: '#a_.*:ex\.org'
  rooms:
    - exclusive: false
      regex: '!abc:ex\.org'
`

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	writeReg(t, dir, "a.yaml", regA)
	writeReg(t, dir, "notes.txt", "ignored")
	list, err := LoadDir(dir, "ex.org")
	if err != nil || len(list) != 1 {
		t.Fatalf("%v %v", list, err)
	}
	a := list[0]
	for _, tc := range []struct {
		got, want bool
		what      string
	}{
		{a.OwnsUser("@a_x:ex.org"), true, "user in namespace"},
		{a.ExclusiveUser("@a_x:ex.org"), true, "exclusive user"},
		{a.ExclusiveUser("@shared_x:ex.org"), false, "shared user not exclusive"},
		{a.OwnsUser("@shared_x:ex.org"), true, "shared user owned"},
		{a.OwnsUser("@abot:ex.org"), true, "sender"},
		{a.OwnsUser("@a_x:ex.org.evil"), false, "anchored"},
		{a.OwnsUser("@b:ex.org"), false, "outside"},
		{a.ExclusiveAlias("#a_room:ex.org"), true, "alias"},
		{a.OwnsRoom("!abc:ex.org"), true, "room"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v", tc.what, tc.got)
		}
	}
	if l, err := LoadDir(filepath.Join(dir, "missing"), "ex.org"); err != nil || l != nil {
		t.Fatalf("missing dir: %v %v", l, err)
	}
}

func TestLoadDirErrors(t *testing.T) {
	for name, body := range map[string]string{
		"duplicate id":    regA + "\n",
		"missing token":   "id: b\nhs_token: x\nsender_localpart: b\n",
		"same tokens":     "id: b\nas_token: x\nhs_token: x\nsender_localpart: b\n",
		"bad regex":       "id: b\nas_token: x\nhs_token: y\nsender_localpart: b\nnamespaces:\n  users:\n    - regex: '('\n",
		"no sender":       "id: b\nas_token: x\nhs_token: y\n",
		"not yaml at all": "{{{",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeReg(t, dir, "a.yaml", regA)
			writeReg(t, dir, "b.yaml", body)
			if _, err := LoadDir(dir, "ex.org"); err == nil || !strings.Contains(err.Error(), "b.yaml") {
				t.Fatalf("want an error naming b.yaml, got %v", err)
			}
		})
	}
}
