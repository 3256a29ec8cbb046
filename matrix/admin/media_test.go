package admin

import (
	"fmt"
	"sort"
	"testing"

	"github.com/hearth-home/hearth/matrix/store"
)

func TestMediaRefs(t *testing.T) {
	cases := []struct {
		pdu  string
		want string
	}{
		{`{"content":{"msgtype":"m.image","url":"mxc://a/1","info":{"thumbnail_url":"mxc://a/2"}}}`, "[mxc://a/1 mxc://a/2]"},
		{`{"content":{"msgtype":"m.file","file":{"url":"mxc://a/3"},"info":{"thumbnail_file":{"url":"mxc://b/4"}}}}`, "[mxc://a/3 mxc://b/4]"},
		{`{"content":{"url":"https://example.org/x.png","info":"not an object"}}`, "[]"},
		{`{"content":{"url":42,"file":{"url":"mxc://a/5"}}}`, "[mxc://a/5]"}, // a wrong type hides nothing else
		{`{"content":{"body":"mxc://a/6 in text is not a reference"}}`, "[]"},
		{`not json`, "[]"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(mediaRefs([]byte(c.pdu))); got != c.want {
			t.Errorf("%s: got %s, want %s", c.pdu, got, c.want)
		}
	}
}

func TestMediaOrder(t *testing.T) {
	name := func(s string) *string { return &s }
	list := []MediaInfo{
		{MediaID: "c", CreatedTS: 1, MediaLength: 30, UploadName: name("b")},
		{MediaID: "a", CreatedTS: 2, MediaLength: 10, UploadName: name("a")},
		{MediaID: "b", CreatedTS: 2, MediaLength: 20},
	}
	for by, want := range map[string]string{"": "cab", "created_ts": "cab", "media_length": "abc", "upload_name": "bac", "media_id": "abc"} {
		cmp, err := mediaOrder(by)
		if err != nil {
			t.Fatal(err)
		}
		l := append([]MediaInfo(nil), list...)
		sort.SliceStable(l, func(i, j int) bool {
			if c := cmp(l[i], l[j]); c != 0 {
				return c < 0
			}
			return l[i].MediaID < l[j].MediaID
		})
		got := ""
		for _, m := range l {
			got += m.MediaID
		}
		if got != want {
			t.Errorf("order_by %q: got %s, want %s", by, got, want)
		}
	}
	if _, err := mediaOrder("size"); err == nil {
		t.Error("unknown order_by accepted")
	}
}

func TestSearchTokens(t *testing.T) {
	rec := &store.EventRecord{PDU: []byte(`{"type":"m.room.topic","content":{"topic":"Zebra crossing","body":"zebra STRIPES","name":42}}`)}
	got := fmt.Sprint(searchTokens(rec))
	if got != "[zebra stripes crossing]" {
		t.Fatalf("tokens %s", got)
	}
	if searchTokens(&store.EventRecord{PDU: []byte(`[]`)}) != nil {
		t.Fatal("tokens of a non-object")
	}
}
