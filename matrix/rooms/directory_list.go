package rooms

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// maxPublicRoomsPage bounds one /publicRooms page when the client names no limit.
const maxPublicRoomsPage = 500

// PublicRoomsRequest is a parsed /publicRooms query.
type PublicRoomsRequest struct {
	Limit      int    // <= 0: no client limit (a page is still bounded)
	Since      string // a next_batch or prev_batch token from an earlier page
	SearchTerm string // generic_search_term: case-insensitive substring of name, topic, alias
	// RoomTypes restricts the room types (nil entry = rooms without a type). Nil: every type.
	RoomTypes []*string
}

// PublicRoomsPage is one page of the published room directory.
type PublicRoomsPage struct {
	Chunk     []*Summary
	NextBatch string
	PrevBatch string
	Total     int // rooms matching the request over all pages
}

// PublicRooms lists the published rooms, largest first (then by room ID, so that the order is
// stable between pages). Tokens are offsets into that order: "n<offset>" for the next page,
// "p<offset>" for the previous one.
func (s *Service) PublicRooms(ctx context.Context, req PublicRoomsRequest) (*PublicRoomsPage, error) {
	offset := 0
	if req.Since != "" {
		if len(req.Since) < 2 || (req.Since[0] != 'n' && req.Since[0] != 'p') {
			return nil, merr.InvalidParam("invalid since token %q", req.Since)
		}
		n, err := strconv.Atoi(req.Since[1:])
		if err != nil || n < 0 {
			return nil, merr.InvalidParam("invalid since token %q", req.Since)
		}
		offset = n
	}
	limit := req.Limit
	if limit <= 0 || limit > maxPublicRoomsPage {
		limit = maxPublicRoomsPage
	}
	term := strings.ToLower(strings.TrimSpace(req.SearchTerm))
	var all []*Summary
	err := s.st.View(func(txn *store.Txn) error {
		nids, err := txn.PublishedRooms()
		if err != nil {
			return err
		}
		for _, nid := range nids {
			sum, err := s.summary(txn, nid)
			if err != nil {
				return err
			}
			if matchSummary(sum, term, req.RoomTypes) {
				all = append(all, sum)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].NumJoinedMembers != all[j].NumJoinedMembers {
			return all[i].NumJoinedMembers > all[j].NumJoinedMembers
		}
		return all[i].RoomID < all[j].RoomID
	})
	page := &PublicRoomsPage{Chunk: []*Summary{}, Total: len(all)}
	if offset > len(all) {
		offset = len(all)
	}
	end := min(offset+limit, len(all))
	page.Chunk = append(page.Chunk, all[offset:end]...)
	if end < len(all) {
		page.NextBatch = "n" + strconv.Itoa(end)
	}
	if offset > 0 {
		page.PrevBatch = "p" + strconv.Itoa(max(offset-limit, 0))
	}
	return page, nil
}

func matchSummary(sum *Summary, term string, types []*string) bool {
	if types != nil {
		ok := false
		for _, t := range types {
			if (t == nil && sum.RoomType == "") || (t != nil && *t == sum.RoomType) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if term == "" {
		return true
	}
	for _, f := range []string{sum.Name, sum.Topic, sum.CanonicalAlias, sum.RoomID} {
		if strings.Contains(strings.ToLower(f), term) {
			return true
		}
	}
	return false
}

// PublicRoomsBody is the JSON body of POST /publicRooms, the same in the client and federation
// APIs; absent fields stay absent when it is forwarded to another server.
type PublicRoomsBody struct {
	Limit  *int    `json:"limit,omitempty"`
	Since  *string `json:"since,omitempty"`
	Filter *struct {
		GenericSearchTerm *string           `json:"generic_search_term,omitempty"`
		RoomTypes         []json.RawMessage `json:"room_types,omitempty"`
	} `json:"filter,omitempty"`
	IncludeAllNetworks   *bool   `json:"include_all_networks,omitempty"`
	ThirdPartyInstanceID *string `json:"third_party_instance_id,omitempty"`
}

// Request validates the body and turns it into a directory query. thirdParty reports a request
// for a third-party network's listing, which is empty here (no application service publishes
// one).
func (b *PublicRoomsBody) Request() (req PublicRoomsRequest, thirdParty bool, err error) {
	if b.Limit != nil {
		if *b.Limit < 0 {
			return req, false, merr.InvalidParam("limit must not be negative")
		}
		req.Limit = *b.Limit
	}
	if b.Since != nil {
		req.Since = *b.Since
	}
	if b.ThirdPartyInstanceID != nil {
		if b.IncludeAllNetworks != nil && *b.IncludeAllNetworks {
			return req, false, merr.InvalidParam("third_party_instance_id cannot be used with include_all_networks")
		}
		return req, true, nil
	}
	if f := b.Filter; f != nil {
		if f.GenericSearchTerm != nil {
			req.SearchTerm = *f.GenericSearchTerm
		}
		for _, raw := range f.RoomTypes {
			var t *string
			if err := json.Unmarshal(raw, &t); err != nil {
				return req, false, merr.BadJSON("room_types entries must be strings or null")
			}
			req.RoomTypes = append(req.RoomTypes, t)
		}
	}
	return req, false, nil
}
