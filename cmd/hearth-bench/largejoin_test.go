package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	mas "maunium.net/go/mautrix/appservice"
)

func TestParseJoiners(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hearth")
	if err := os.WriteFile(bin, []byte("x"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := parseJoiners("A="+bin+", B="+bin+"@64MiB,D=dendrite", "def")
	if err != nil {
		t.Fatal(err)
	}
	want := []ljJoiner{{"A", bin, ""}, {"B", bin, "64MiB"}, {"D", dendriteJoiner, ""}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("joiner %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if d, _ := parseJoiners("", "def"); len(d) != 1 || d[0].bin != "def" {
		t.Fatalf("default = %v", d)
	}
	for _, bad := range []string{"A", "=x", "A=", "A=/does/not/exist"} {
		if _, err := parseJoiners(bad, "def"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The registration the benchmark writes must parse as one and own exactly its users.
func TestBenchAppServiceRegistration(t *testing.T) {
	dir := t.TempDir()
	tok, err := writeBenchAppService(dir, "localhost:8448")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "largejoin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var reg mas.Registration
	if err := yaml.Unmarshal(b, &reg); err != nil {
		t.Fatal(err)
	}
	if reg.AppToken != tok || reg.URL != "" || len(reg.Namespaces.UserIDs) != 1 {
		t.Fatalf("registration %+v", reg)
	}
	if re := reg.Namespaces.UserIDs[0].Regex; !strings.Contains(re, `localhost:8448`) || !strings.HasPrefix(re, "@lj_") {
		t.Fatalf("namespace %q", re)
	}
	if regexpQuote("a.b.c") != `a\.b\.c` {
		t.Fatal(regexpQuote("a.b.c"))
	}
}
