package clientapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// The Synapse-compatible admin media API (list, delete, quarantine) and purge_history.

// adminBlobPath is where the content-addressed file of data lives in a test server.
func adminBlobPath(s *testserver.Server, data []byte) string {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	return filepath.Join(s.DataDir, "media", h[0:2], h[2:4], h)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func mediaIDs(t *testing.T, m map[string]any, key string) []string {
	t.Helper()
	list, ok := m[key].([]any)
	if !ok {
		t.Fatalf("%s missing in %v", key, m)
	}
	var out []string
	for _, v := range list {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			out = append(out, x["media_id"].(string))
		}
	}
	return out
}

func TestAdminMediaListAndQuarantine(t *testing.T) {
	s := testserver.Start(t)
	root := s.Register(t, "root", true)
	alice := s.Register(t, "alice", false)
	tok := root.AccessToken
	aliceID := "@alice:" + s.ServerName
	userMedia := "/_synapse/admin/v1/users/" + cs3Esc(aliceID) + "/media"

	img := mediaEncode(t, "png", mediaTestImage(40, 20))
	a := mediaUpload(t, alice, img, "image/png", "a.png")
	time.Sleep(2 * time.Millisecond) // distinct created_ts for the ordering checks
	b := mediaUpload(t, alice, []byte("bee text"), "text/plain", "b.txt")
	time.Sleep(2 * time.Millisecond)
	c := mediaUpload(t, alice, []byte("a somewhat longer body for c"), "text/plain", "c.txt")

	// Admin only.
	cs3Do(t, s, http.MethodGet, userMedia, alice.AccessToken, nil).want(t, 403, "M_FORBIDDEN")
	cs3Do(t, s, http.MethodPost, "/_synapse/admin/v1/media/quarantine/"+s.ServerName+"/"+b.FileID, alice.AccessToken, nil).want(t, 403, "M_FORBIDDEN")
	cs3Do(t, s, http.MethodDelete, "/_synapse/admin/v1/media/"+s.ServerName+"/"+b.FileID, alice.AccessToken, nil).want(t, 403, "M_FORBIDDEN")

	// Listing: default order is created_ts ascending, with paging.
	l := cs3Do(t, s, http.MethodGet, userMedia, tok, nil).ok(t)
	if got := mediaIDs(t, l, "media"); cs3Num(l, "total") != 3 || fmt.Sprint(got) != fmt.Sprint([]string{a.FileID, b.FileID, c.FileID}) {
		t.Fatalf("list %v", l)
	}
	first := l["media"].([]any)[0].(map[string]any)
	if first["media_type"] != "image/png" || first["upload_name"] != "a.png" || cs3Num(first, "media_length") != int64(len(img)) || first["quarantined_by"] != nil || cs3Num(first, "created_ts") <= 0 {
		t.Fatalf("entry %v", first)
	}
	p1 := cs3Do(t, s, http.MethodGet, userMedia+"?limit=2", tok, nil).ok(t)
	if len(mediaIDs(t, p1, "media")) != 2 || cs3Num(p1, "next_token") != 2 || cs3Num(p1, "total") != 3 {
		t.Fatalf("page 1 %v", p1)
	}
	p2 := cs3Do(t, s, http.MethodGet, userMedia+"?limit=2&from=2", tok, nil).ok(t)
	if got := mediaIDs(t, p2, "media"); len(got) != 1 || got[0] != c.FileID || p2["next_token"] != nil {
		t.Fatalf("page 2 %v", p2)
	}
	bySize := cs3Do(t, s, http.MethodGet, userMedia+"?order_by=media_length&dir=b", tok, nil).ok(t)
	if got := mediaIDs(t, bySize, "media"); fmt.Sprint(got) != fmt.Sprint([]string{a.FileID, c.FileID, b.FileID}) {
		t.Fatalf("by size %v", got)
	}
	cs3Do(t, s, http.MethodGet, userMedia+"?order_by=colour", tok, nil).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodGet, userMedia+"?dir=sideways", tok, nil).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodGet, userMedia+"?limit=-1", tok, nil).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/users/"+cs3Esc("@nobody:"+s.ServerName)+"/media", tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/users/"+cs3Esc("@x:elsewhere.example")+"/media", tok, nil).want(t, 400, "M_INVALID_PARAM")

	// Quarantine: the media stops being served (download and thumbnail) but is kept.
	q := "/_synapse/admin/v1/media/quarantine/" + s.ServerName + "/"
	uq := "/_synapse/admin/v1/media/unquarantine/" + s.ServerName + "/"
	cs3Do(t, s, http.MethodPost, q+b.FileID, tok, nil).ok(t)
	cs3Do(t, s, http.MethodPost, q+a.FileID, tok, nil).ok(t)
	mediaDo(t, s, http.MethodGet, mediaPath("download", b), alice.AccessToken, nil, nil).want(t, 404, "M_NOT_FOUND")
	mediaDo(t, s, http.MethodGet, mediaPath("thumbnail", a)+"?width=16&height=16", alice.AccessToken, nil, nil).want(t, 404, "M_NOT_FOUND")
	mediaDo(t, s, http.MethodGet, mediaPath("download", c), alice.AccessToken, nil, nil).want(t, 200, "")
	l = cs3Do(t, s, http.MethodGet, userMedia+"?order_by=media_id", tok, nil).ok(t)
	quarantined := 0
	for _, e := range l["media"].([]any) {
		if e.(map[string]any)["quarantined_by"] == root.UserID.String() {
			quarantined++
		}
	}
	if quarantined != 2 || !exists(adminBlobPath(s, []byte("bee text"))) {
		t.Fatalf("quarantined %d in %v", quarantined, l)
	}
	cs3Do(t, s, http.MethodPost, uq+b.FileID, tok, nil).ok(t)
	cs3Do(t, s, http.MethodPost, uq+a.FileID, tok, nil).ok(t)
	if r := mediaDo(t, s, http.MethodGet, mediaPath("download", b), alice.AccessToken, nil, nil); r.status != 200 || string(r.body) != "bee text" {
		t.Fatalf("after unquarantine %d %s", r.status, r.body)
	}
	mediaDo(t, s, http.MethodGet, mediaPath("thumbnail", a)+"?width=16&height=16", alice.AccessToken, nil, nil).want(t, 200, "")
	cs3Do(t, s, http.MethodPost, q+"NoSuchMedia", tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodPost, "/_synapse/admin/v1/media/quarantine/elsewhere.example/abc", tok, nil).want(t, 404, "M_NOT_FOUND")

	// Media of a room: listed from the events, quarantined together.
	room := cs3CreateRoom(t, s, alice, map[string]any{})
	cs3Do(t, s, http.MethodPut, "/_matrix/client/v3/rooms/"+cs3Esc(room.String())+"/send/m.room.message/t1", alice.AccessToken,
		map[string]any{"msgtype": "m.image", "body": "a.png", "url": a.String(), "info": map[string]any{"thumbnail_url": c.String()}}).ok(t)
	cs3Do(t, s, http.MethodPut, "/_matrix/client/v3/rooms/"+cs3Esc(room.String())+"/send/m.room.message/t2", alice.AccessToken,
		map[string]any{"msgtype": "m.file", "body": "far away", "url": "mxc://elsewhere.example/remote1"}).ok(t)
	rm := cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/room/"+cs3Esc(room.String())+"/media", tok, nil).ok(t)
	if fmt.Sprint(rm["local"]) != fmt.Sprint([]any{a.String(), c.String()}) || fmt.Sprint(rm["remote"]) != "[mxc://elsewhere.example/remote1]" {
		t.Fatalf("room media %v", rm)
	}
	cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/room/"+cs3Esc("!nope:"+s.ServerName)+"/media", tok, nil).want(t, 404, "M_NOT_FOUND")
	rq := cs3Do(t, s, http.MethodPost, "/_synapse/admin/v1/room/"+cs3Esc(room.String())+"/media/quarantine", tok, nil).ok(t)
	if cs3Num(rq, "num_quarantined") != 2 {
		t.Fatalf("room quarantine %v", rq)
	}
	mediaDo(t, s, http.MethodGet, mediaPath("download", a), alice.AccessToken, nil, nil).want(t, 404, "M_NOT_FOUND")
	mediaDo(t, s, http.MethodGet, mediaPath("download", c), alice.AccessToken, nil, nil).want(t, 404, "M_NOT_FOUND")
	mediaDo(t, s, http.MethodGet, mediaPath("download", b), alice.AccessToken, nil, nil).want(t, 200, "")
	uqUser := cs3Do(t, s, http.MethodPost, "/_synapse/admin/v1/user/"+cs3Esc(aliceID)+"/media/quarantine", tok, nil).ok(t)
	if cs3Num(uqUser, "num_quarantined") != 3 {
		t.Fatalf("user quarantine %v", uqUser)
	}
	mediaDo(t, s, http.MethodGet, mediaPath("download", b), alice.AccessToken, nil, nil).want(t, 404, "M_NOT_FOUND")
}

func TestAdminMediaDelete(t *testing.T) {
	s := testserver.Start(t)
	root := s.Register(t, "root", true)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	tok := root.AccessToken
	shared := []byte("the same bytes twice")
	aShared := mediaUpload(t, alice, shared, "text/plain", "s.txt")
	bShared := mediaUpload(t, bob, shared, "text/plain", "s.txt")
	aOwn := mediaUpload(t, alice, []byte("alice only"), "text/plain", "own.txt")

	del := func(uri id.ContentURI) string { return "/_synapse/admin/v1/media/" + uri.Homeserver + "/" + uri.FileID }
	cs3Do(t, s, http.MethodDelete, del(aShared), alice.AccessToken, nil).want(t, 403, "M_FORBIDDEN")
	cs3Do(t, s, http.MethodDelete, "/_synapse/admin/v1/media/"+s.ServerName+"/NoSuchMedia", tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodDelete, "/_synapse/admin/v1/media/elsewhere.example/abc", tok, nil).want(t, 400, "M_INVALID_PARAM")

	// Deleting one of two records of the same content keeps the file for the other.
	d := cs3Do(t, s, http.MethodDelete, del(aShared), tok, nil).ok(t)
	if fmt.Sprint(mediaIDs(t, d, "deleted_media")) != "["+aShared.FileID+"]" || cs3Num(d, "total") != 1 {
		t.Fatalf("delete %v", d)
	}
	mediaDo(t, s, http.MethodGet, mediaPath("download", aShared), alice.AccessToken, nil, nil).want(t, 404, "M_NOT_FOUND")
	mediaDo(t, s, http.MethodGet, mediaPath("download", bShared), bob.AccessToken, nil, nil).want(t, 200, "")
	if !exists(adminBlobPath(s, shared)) {
		t.Fatal("shared file removed while bob's record still uses it")
	}
	cs3Do(t, s, http.MethodDelete, del(bShared), tok, nil).ok(t)
	if exists(adminBlobPath(s, shared)) {
		t.Fatal("file kept after its last record was deleted")
	}
	cs3Do(t, s, http.MethodDelete, del(bShared), tok, nil).want(t, 404, "M_NOT_FOUND")

	// A user's media, then the list is empty.
	img := mediaEncode(t, "png", mediaTestImage(40, 20))
	aImg := mediaUpload(t, alice, img, "image/png", "i.png")
	mediaDo(t, s, http.MethodGet, mediaPath("thumbnail", aImg)+"?width=16&height=16", alice.AccessToken, nil, nil).want(t, 200, "")
	userMedia := "/_synapse/admin/v1/users/" + cs3Esc("@alice:"+s.ServerName) + "/media"
	cs3Do(t, s, http.MethodDelete, userMedia, alice.AccessToken, nil).want(t, 403, "M_FORBIDDEN")
	du := cs3Do(t, s, http.MethodDelete, userMedia, tok, nil).ok(t)
	if got := mediaIDs(t, du, "deleted_media"); len(got) != 2 || cs3Num(du, "total") != 2 || !strings.Contains(fmt.Sprint(got), aOwn.FileID) {
		t.Fatalf("delete user media %v", du)
	}
	if exists(adminBlobPath(s, img)) || exists(adminBlobPath(s, []byte("alice only"))) {
		t.Fatal("user media files kept")
	}
	thumbs, _ := filepath.Glob(filepath.Join(s.DataDir, "media", "thumbnails", "*", "*", "*"))
	if len(thumbs) != 0 {
		t.Fatalf("thumbnails kept: %v", thumbs)
	}
	if l := cs3Do(t, s, http.MethodGet, userMedia, tok, nil).ok(t); cs3Num(l, "total") != 0 {
		t.Fatalf("after delete %v", l)
	}

	// Local media older than a time; avatars stay unless keep_profiles=false.
	old := mediaUpload(t, bob, []byte("old and large enough"), "text/plain", "old.txt")
	small := mediaUpload(t, bob, []byte("tiny"), "text/plain", "tiny.txt")
	avatar := mediaUpload(t, bob, img, "image/png", "me.png")
	cs3Do(t, s, http.MethodPut, "/_matrix/client/v3/profile/"+cs3Esc(bob.UserID.String())+"/avatar_url", bob.AccessToken, map[string]any{"avatar_url": avatar.String()}).ok(t)
	time.Sleep(5 * time.Millisecond)
	cut := time.Now().UnixMilli()
	time.Sleep(5 * time.Millisecond)
	fresh := mediaUpload(t, bob, []byte("uploaded after the cut"), "text/plain", "new.txt")

	cs3Do(t, s, http.MethodPost, "/_synapse/admin/v1/media/delete", tok, nil).want(t, 400, "M_MISSING_PARAM")
	cs3Do(t, s, http.MethodPost, "/_synapse/admin/v1/media/delete?before_ts=soon", tok, nil).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodPost, fmt.Sprintf("/_synapse/admin/v1/media/delete?before_ts=%d&keep_profiles=maybe", cut), tok, nil).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodPost, fmt.Sprintf("/_synapse/admin/v1/media/delete?before_ts=%d", cut), alice.AccessToken, nil).want(t, 403, "M_FORBIDDEN")
	db := cs3Do(t, s, http.MethodPost, fmt.Sprintf("/_synapse/admin/v1/media/delete?before_ts=%d&size_gt=4", cut), tok, nil).ok(t)
	if got := mediaIDs(t, db, "deleted_media"); fmt.Sprint(got) != "["+old.FileID+"]" {
		t.Fatalf("delete before: %v (old %s small %s avatar %s fresh %s)", db, old.FileID, small.FileID, avatar.FileID, fresh.FileID)
	}
	db = cs3Do(t, s, http.MethodPost, fmt.Sprintf("/_synapse/admin/v1/media/%s/delete?before_ts=%d&keep_profiles=false", s.ServerName, cut), tok, nil).ok(t)
	if got := mediaIDs(t, db, "deleted_media"); len(got) != 2 || !strings.Contains(fmt.Sprint(got), avatar.FileID) || !strings.Contains(fmt.Sprint(got), small.FileID) {
		t.Fatalf("delete before, avatars too: %v", db)
	}
	mediaDo(t, s, http.MethodGet, mediaPath("download", fresh), bob.AccessToken, nil, nil).want(t, 200, "")
}
