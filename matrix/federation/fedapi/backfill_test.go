package fedapi

import (
	"net/http"
	"slices"
	"testing"
)

func TestBackfill(t *testing.T) {
	e := newEnv(t)
	r := newSharedRoom(t, e)
	rv, _ := e.rooms.Version(r.id)
	base := "/v1/backfill/" + esc(r.id.String())

	// Newest first, the starting event included, cut at the limit.
	got := pduIDs(t, e.get(t, "remote.test", base+"?v="+q(r.m5.String())+"&limit=3").ok(t)["pdus"], rv)
	if want := []string{r.m5.String(), r.m4.String(), r.m3.String()}; !slices.Equal(got, want) {
		t.Errorf("backfill from m5 limit 3 = %v, want %v", got, want)
	}
	// History "shared": bob's server also gets what happened before bob joined, down to the
	// create event.
	all := pduIDs(t, e.get(t, "remote.test", base+"?v="+q(r.m2.String())+"&limit=100").ok(t)["pdus"], rv)
	if !contains(all, r.m1.String()) || all[len(all)-1] != r.create.String() || contains(all, r.m3.String()) {
		t.Errorf("backfill from m2: %v; want m1 and the create event last, nothing after m2", all)
	}
	// Two starting points, one of them unknown: the known one is walked.
	two := pduIDs(t, e.get(t, "remote.test", base+"?v="+q(r.m4.String())+"&v="+q("$unknown")+"&limit=2").ok(t)["pdus"], rv)
	if want := []string{r.m4.String(), r.m3.String()}; !slices.Equal(two, want) {
		t.Errorf("backfill from m4 and an unknown event = %v, want %v", two, want)
	}

	e.get(t, "remote.test", base+"?limit=3").fail(t, http.StatusBadRequest, "M_MISSING_PARAM")
	e.get(t, "remote.test", base+"?v="+q(r.m5.String())).fail(t, http.StatusBadRequest, "M_MISSING_PARAM")
	e.get(t, "remote.test", base+"?v="+q(r.m5.String())+"&limit=ten").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", base+"?v="+q(r.m5.String())+"&limit=-1").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", base+"?v=nope&limit=3").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", base+"?v="+q("$unknown")+"&limit=3").fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", "/v1/backfill/"+esc("!nope:hearth.test")+"?v="+q(r.m5.String())+"&limit=3").fail(t, http.StatusNotFound, "M_NOT_FOUND")
}

func TestGetMissingEvents(t *testing.T) {
	e := newEnv(t)
	r := newSharedRoom(t, e)
	rv, _ := e.rooms.Version(r.id)
	path := "/v1/get_missing_events/" + esc(r.id.String())
	gme := func(body any) []string {
		t.Helper()
		return pduIDs(t, e.do(t, "remote.test", http.MethodPost, path, body).ok(t)["events"], rv)
	}

	// Between m2 (held) and m5 (latest): topic2, m3, m4, oldest first.
	got := gme(map[string]any{"earliest_events": []string{r.m2.String()}, "latest_events": []string{r.m5.String()}, "limit": 10})
	if want := []string{r.topic2.String(), r.m3.String(), r.m4.String()}; !slices.Equal(got, want) {
		t.Errorf("missing events = %v, want %v", got, want)
	}
	// The limit keeps the newest ones.
	got = gme(map[string]any{"earliest_events": []string{r.m2.String()}, "latest_events": []string{r.m5.String()}, "limit": 2})
	if want := []string{r.m3.String(), r.m4.String()}; !slices.Equal(got, want) {
		t.Errorf("missing events limit 2 = %v, want %v", got, want)
	}
	// min_depth stops the walk: nothing below m3's depth.
	m3, err := e.rooms.FedEvent(bg, "remote.test", r.m3)
	if err != nil {
		t.Fatal(err)
	}
	got = gme(map[string]any{"earliest_events": []string{}, "latest_events": []string{r.m5.String()}, "min_depth": m3.Lite.Depth})
	if want := []string{r.m3.String(), r.m4.String()}; !slices.Equal(got, want) {
		t.Errorf("missing events with min_depth = %v, want %v", got, want)
	}
	// The default limit is 10.
	if got = gme(map[string]any{"earliest_events": []string{}, "latest_events": []string{r.m5.String()}}); len(got) != 10 {
		t.Errorf("default limit: %d events", len(got))
	}

	e.do(t, "remote.test", http.MethodPost, path, "{not json").fail(t, http.StatusBadRequest, "M_NOT_JSON")
	e.do(t, "remote.test", http.MethodPost, path, map[string]any{"latest_events": []string{r.m5.String()}}).fail(t, http.StatusBadRequest, "M_BAD_JSON")
	e.do(t, "remote.test", http.MethodPost, path, map[string]any{"earliest_events": "x", "latest_events": []string{}}).fail(t, http.StatusBadRequest, "M_BAD_JSON")
	e.do(t, "remote.test", http.MethodPost, path, map[string]any{"earliest_events": []string{}, "latest_events": []string{"x"}}).fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.do(t, "remote.test", http.MethodPost, path, map[string]any{"earliest_events": []string{}, "latest_events": []string{}, "limit": -2}).fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.do(t, "remote.test", http.MethodPost, "/v1/get_missing_events/"+esc("!nope:hearth.test"),
		map[string]any{"earliest_events": []string{}, "latest_events": []string{}}).fail(t, http.StatusNotFound, "M_NOT_FOUND")
}
