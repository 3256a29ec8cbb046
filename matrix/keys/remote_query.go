package keys

import (
	"context"
	"encoding/json"
	"sort"
	gosync "sync"

	"maunium.net/go/mautrix/id"
)

// Client /keys/query and /keys/claim for users of other servers: one request per server, all
// servers at once, each bounded by the configured timeout. A server that fails or times out
// is listed in "failures" with the reason; the others' answers are kept.

// byServer groups remote users' requests by their server; local users are left out.
func byServer[T any](s *Service, req map[string]T) map[string]map[string]T {
	out := map[string]map[string]T{}
	for u, v := range req {
		if s.isLocal(u) {
			continue
		}
		hs := id.UserID(u).Homeserver()
		if hs == "" {
			continue
		}
		if out[hs] == nil {
			out[hs] = map[string]T{}
		}
		out[hs][u] = v
	}
	return out
}

func failure(err error) map[string]any {
	return map[string]any{"errcode": "M_UNKNOWN", "error": err.Error()}
}

func unavailable() map[string]any {
	return map[string]any{"errcode": "M_UNRECOGNIZED", "error": "federation is not available on this server"}
}

// queryRemote fills resp with the keys of the remote users in users, from the cache when it
// is fresh and from their servers otherwise.
func (s *Service) queryRemote(ctx context.Context, users map[string][]string, resp *QueryResponse) {
	servers := byServer(s, users)
	if len(servers) == 0 {
		return
	}
	if s.remote == nil {
		for hs := range servers {
			resp.Failures[hs] = unavailable()
		}
		return
	}
	var names []string
	for _, us := range servers {
		for u := range us {
			names = append(names, u)
		}
	}
	tracked := s.trackableSet(names) // remote_track.go
	trackable := func(u string) bool { return tracked[u] }
	ask := map[string]map[string][]string{}
	for hs, us := range servers {
		for u, devs := range us {
			if e := s.remote.cached(u); e != nil {
				if tracked[u] {
					s.remote.fill(u, devs, e, resp)
					continue
				}
				s.remote.drop(u) // no shared room: its updates no longer reach us
			}
			if ask[hs] == nil {
				ask[hs] = map[string][]string{}
			}
			ask[hs][u] = devs
		}
	}
	type answer struct {
		server string
		r      *FedQueryResponse
		err    error
	}
	answers := make(chan answer, len(ask))
	var wg gosync.WaitGroup
	for hs, us := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cancel := context.WithTimeout(ctx, s.remote.o.Timeout)
			defer cancel()
			r, err := s.remote.o.Federation.QueryKeys(c, hs, us)
			answers <- answer{hs, r, err}
		}()
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.err != nil {
			resp.Failures[a.server] = failure(a.err)
			continue
		}
		s.remote.take(a.server, ask[a.server], a.r, resp, trackable)
	}
}

// fill copies a cache entry into a query answer (only the requested devices when some are named).
func (r *remoteState) fill(user string, devs []string, e *remoteUser, resp *QueryResponse) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]json.RawMessage{}
	if len(devs) == 0 {
		for d, k := range e.devices {
			out[d] = k
		}
	} else {
		for _, d := range devs {
			if k, ok := e.devices[d]; ok {
				out[d] = k
			}
		}
	}
	resp.DeviceKeys[user] = out
	if e.master != nil {
		resp.MasterKeys[user] = e.master
	}
	if e.selfSigning != nil {
		resp.SelfSigningKeys[user] = e.selfSigning
	}
}

// take copies one server's answer into resp (only users of that server that were asked for)
// and caches the users whose whole device list was asked for and who share a room with ours.
func (r *remoteState) take(server string, asked map[string][]string, a *FedQueryResponse, resp *QueryResponse, trackable func(user string) bool) {
	if a == nil {
		return
	}
	for u, devs := range a.DeviceKeys {
		want, ok := asked[u]
		if !ok || id.UserID(u).Homeserver() != server {
			continue // a server speaks only for its own users, and only for those asked about
		}
		clean := map[string]json.RawMessage{}
		for d, k := range devs {
			if isObject(k) {
				clean[d] = k
			}
		}
		resp.DeviceKeys[u] = clean
		e := &remoteUser{devices: clean}
		if k := a.MasterKeys[u]; isObject(k) {
			resp.MasterKeys[u], e.master = k, k
		}
		if k := a.SelfSigningKeys[u]; isObject(k) {
			resp.SelfSigningKeys[u], e.selfSigning = k, k
		}
		if len(want) == 0 && trackable(u) {
			copied := make(map[string]json.RawMessage, len(clean))
			for d, k := range clean {
				copied[d] = k
			}
			e.devices = copied
			r.put(u, e)
		}
	}
}

// claimRemote claims one-time keys of remote users from their servers into resp.
func (s *Service) claimRemote(ctx context.Context, req map[string]map[string]string, resp *ClaimResponse) {
	servers := byServer(s, req)
	if len(servers) == 0 {
		return
	}
	if s.remote == nil {
		for hs := range servers {
			resp.Failures[hs] = unavailable()
		}
		return
	}
	names := make([]string, 0, len(servers))
	for hs := range servers {
		names = append(names, hs)
	}
	sort.Strings(names)
	type answer struct {
		r   map[string]map[string]map[string]json.RawMessage
		err error
	}
	answers := make([]answer, len(names))
	var wg gosync.WaitGroup
	for i, hs := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cancel := context.WithTimeout(ctx, s.remote.o.Timeout)
			defer cancel()
			r, err := s.remote.o.Federation.ClaimKeys(c, hs, servers[hs])
			answers[i] = answer{r, err}
		}()
	}
	wg.Wait()
	for i, hs := range names {
		a := answers[i]
		if a.err != nil {
			resp.Failures[hs] = failure(a.err)
			continue
		}
		for u, devs := range a.r {
			asked, ok := servers[hs][u]
			if !ok {
				continue
			}
			for dev, keys := range devs {
				if _, ok := asked[dev]; !ok {
					continue
				}
				clean := map[string]json.RawMessage{}
				for kid, k := range keys {
					if len(k) > 0 && json.Valid(k) {
						clean[kid] = k
					}
				}
				if len(clean) == 0 {
					continue
				}
				if resp.OneTimeKeys[u] == nil {
					resp.OneTimeKeys[u] = map[string]map[string]json.RawMessage{}
				}
				resp.OneTimeKeys[u][dev] = clean
			}
		}
	}
}
