package sync

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hearth-home/hearth/matrix/merr"
)

func TestStateSpecShapes(t *testing.T) {
	const me = "@me:hs"
	cases := []struct {
		name string
		raw  string
		yes  [][2]string
		no   [][2]string
		lazy bool
		wild bool
	}{
		{
			name: "element x pairs",
			raw:  `[["m.room.name",""],["m.room.member","$LAZY"],["m.room.member","$ME"],["m.space.child","*"]]`,
			yes:  [][2]string{{"m.room.name", ""}, {"m.room.member", me}, {"m.space.child", "!a:hs"}},
			no:   [][2]string{{"m.room.member", "@other:hs"}, {"m.room.topic", ""}, {"m.room.name", "x"}},
			lazy: true, wild: true,
		},
		{
			name: "everything",
			raw:  `[["*","*"]]`,
			yes:  [][2]string{{"m.room.member", "@other:hs"}, {"x", "y"}},
			wild: true,
		},
		{
			name: "one key of every type",
			raw:  `[["*","k"]]`,
			yes:  [][2]string{{"a", "k"}, {"b", "k"}},
			no:   [][2]string{{"a", ""}},
			wild: true,
		},
		{
			name: "msc object with exclude",
			raw:  `{"include": [{}], "exclude": [{"type": "m.room.create", "state_key": ""}], "lazy_members": true}`,
			yes:  [][2]string{{"m.room.name", ""}, {"m.room.member", "@x:hs"}},
			no:   [][2]string{{"m.room.create", ""}},
			lazy: true, wild: true,
		},
		{
			name: "msc object exact",
			raw:  `{"include": [{"type": "m.room.create", "state_key": ""}, {"type": "m.room.member", "state_key": "$ME"}]}`,
			yes:  [][2]string{{"m.room.create", ""}, {"m.room.member", me}},
			no:   [][2]string{{"m.room.member", "@x:hs"}},
		},
		{name: "absent", raw: ``, no: [][2]string{{"m.room.create", ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseStateSpec([]byte(tc.raw), map[string]*stateSpec{})
			if err != nil {
				t.Fatal(err)
			}
			for _, y := range tc.yes {
				if !s.match(y[0], y[1], me) {
					t.Errorf("%v not matched", y)
				}
			}
			for _, n := range tc.no {
				if s.match(n[0], n[1], me) {
					t.Errorf("%v matched", n)
				}
			}
			if s.lazy != tc.lazy || s.wildcard() != tc.wild {
				t.Errorf("lazy=%v wildcard=%v, want %v %v", s.lazy, s.wildcard(), tc.lazy, tc.wild)
			}
		})
	}
	intern := map[string]*stateSpec{}
	a, _ := parseStateSpec([]byte(`[["a",""]]`), intern)
	b, _ := parseStateSpec([]byte(`[["a",""]]`), intern)
	if a != b {
		t.Error("identical required_state is not shared within a request")
	}
	for _, bad := range []string{`[["a"]]`, `"x"`, `[[1,2]]`, `{"include": 3}`} {
		if _, err := parseStateSpec([]byte(bad), map[string]*stateSpec{}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestSlidingRequestBothShapes(t *testing.T) {
	old, err := parseSlidingRequest([]byte(`{"conn_id":"room-list","lists":{"all_rooms":{"ranges":[[0,19],[40,49]],"timeline_limit":1,"required_state":[["m.room.name",""]],"filters":{"is_invite":true}}},
		"room_subscriptions":{"!r:hs":{"timeline_limit":500,"required_state":[]}, "not-a-room":{"timeline_limit":1}},
		"extensions":{"to_device":{"enabled":true,"since":"s12_0"},"receipts":{"enabled":true,"rooms":["*"]},"typing":{"enabled":false}}}`))
	if err != nil {
		t.Fatal(err)
	}
	l := old.lists[0]
	if len(l.ranges) != 2 || l.ranges[1] != [2]int{40, 49} || l.config.limit != 1 || *l.filters.IsInvite != true {
		t.Errorf("list = %+v", l)
	}
	if len(old.subs) != 1 || old.subs["!r:hs"].limit != slidingMaxTimelineLimit {
		t.Errorf("subscriptions = %+v (limit capped, non-room IDs ignored)", old.subs)
	}
	if !old.ext.toDevice || old.ext.receipts == nil || old.ext.typing != nil || old.toDeviceSince() != "s12_0" {
		t.Errorf("extensions = %+v", old.ext)
	}
	if n, ok := parseStreamToken("s12_0"); !ok || n != 12 {
		t.Errorf("s12_0 -> %d %v", n, ok)
	}
	// Sticky extensions: a request naming none keeps the previous config.
	again, _ := parseSlidingRequest([]byte(`{}`))
	if m := again.mergeExt(old.ext); !m.toDevice || m.receipts == nil {
		t.Errorf("extension config not kept: %+v", m)
	}

	msc, err := parseSlidingRequest([]byte(`{"pos":"1_2","timeout":500,"lists":{"l":{"range":[0,9],"timeline_limit":3,"required_state":{"include":[{}]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if msc.req.Pos != "1_2" || *msc.req.Timeout != 500 || msc.lists[0].ranges[0] != [2]int{0, 9} || !msc.lists[0].config.state.all {
		t.Errorf("MSC shape = %+v", msc.lists[0])
	}
	noRange, _ := parseSlidingRequest([]byte(`{"lists":{"l":{"timeline_limit":1}}}`))
	if noRange.lists[0].ranges != nil {
		t.Error("a list without range must cover every room")
	}
}

func TestSlidingRegistry(t *testing.T) {
	var r slidingRegistry
	now := time.Now()
	k := connKey{user: "@a:hs", device: "D", conn: "room-list"}
	mk := func(upto uint64) *connState {
		return &connState{gen: r.nextGen(), upto: upto, rooms: map[uint64]roomSeen{}}
	}
	unknown := func(err error) bool {
		e, ok := merr.As(err)
		return ok && e.Code == "M_UNKNOWN_POS" && e.Status == 400
	}
	s1 := mk(10)
	r.store(k, s1, true, now)
	if _, err := r.acquire(connKey{user: "@b:hs", device: "D", conn: "room-list"}, s1.token(), now); !unknown(err) {
		t.Errorf("another user's pos: %v", err)
	}
	if _, err := r.acquire(k, "10_1", now); !unknown(err) {
		t.Errorf("made-up pos: %v", err)
	}
	got, err := r.acquire(k, s1.token(), now)
	if err != nil || got != s1 {
		t.Fatalf("acquire s1: %v", err)
	}
	// Two responses from s1 (a retry): either may be named next; naming one drops the other.
	s2, s3 := mk(11), mk(12)
	r.store(k, s2, false, now)
	r.store(k, s3, false, now)
	if got, err := r.acquire(k, s1.token(), now); err != nil || got != s1 {
		t.Errorf("retry with s1 after answering it: %v", err)
	}
	if got, err := r.acquire(k, s3.token(), now); err != nil || got != s3 {
		t.Fatalf("acquire s3: %v", err)
	}
	for _, old := range []*connState{s1, s2} {
		if _, err := r.acquire(k, old.token(), now); !unknown(err) {
			t.Errorf("superseded pos %s: %v", old.token(), err)
		}
	}
	// Idle connections expire.
	if _, err := r.acquire(k, s3.token(), now.Add(slidingIdle+2*slidingSweepInterval)); !unknown(err) {
		t.Errorf("expired connection: %v", err)
	}
	// Per-device bound: the least recently used connection goes.
	for i := range slidingPerDevice + 3 {
		key := connKey{user: "@a:hs", device: "D", conn: fmt.Sprint(i)}
		r.store(key, mk(1), true, now.Add(time.Duration(i)*time.Second))
	}
	if n, _ := r.stats(); n != slidingPerDevice {
		t.Errorf("%d connections for one device, want %d", n, slidingPerDevice)
	}
	if _, err := r.acquire(connKey{user: "@a:hs", device: "D", conn: "0"}, "x_1", now); !errors.Is(err, err) || !unknown(err) {
		t.Errorf("evicted connection: %v", err)
	}
	// Byte budget: big connections push out the oldest.
	big := func() *connState {
		s := mk(1)
		for i := range 20000 {
			s.rooms[uint64(i)] = roomSeen{}
		}
		return s
	}
	for i := range 10 {
		r.store(connKey{user: fmt.Sprintf("@u%d:hs", i), device: "D", conn: ""}, big(), true, now.Add(time.Duration(100+i)*time.Second))
	}
	if _, bytes := r.stats(); bytes > slidingBudget {
		t.Errorf("estimated %d bytes kept, budget %d", bytes, slidingBudget)
	}
}
