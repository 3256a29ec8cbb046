package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// rawRequester is the part of mautrix's federation client that can hand back an answer's body
// unread (RequestParams.DontReadBody): the request is built and signed (X-Matrix) exactly as
// for every other call, only the decode is ours.
type rawRequester interface {
	MakeFullRequest(ctx context.Context, params mfed.RequestParams) ([]byte, *http.Response, error)
}

// sendJoinStream sends our signed join to via (PUT /v2/send_join) and streams the answer into h.
// It returns the answer's "event" (the join countersigned by via, for restricted rooms).
// A client that cannot return the body unread (a test double) is asked for the decoded answer,
// which is then fed to h the same way.
func (s *Service) sendJoinStream(ctx context.Context, via string, roomID id.RoomID, join rooms.Remote, h sendJoinHandler) (json.RawMessage, error) {
	rr, ok := s.client.(rawRequester)
	if !ok {
		return s.sendJoinDecoded(ctx, via, roomID, join, h)
	}
	_, resp, err := rr.MakeFullRequest(ctx, mfed.RequestParams{
		ServerName:   via,
		Method:       http.MethodPut,
		Path:         mfed.URLPath{"v2", "send_join", roomID, join.ID},
		Query:        url.Values{"omit_members": {"false"}},
		Authenticate: true,
		RequestJSON:  json.RawMessage(join.JSON),
		DontReadBody: true,
	})
	if resp != nil && resp.Body != nil {
		// With DontReadBody the client leaves closing to us, error answers included.
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, remoteErr("send_join", via, err)
	}
	return decodeAnswer(via, resp.Body, h)
}

// decodeAnswer streams an answer into h. The handler's own errors pass through; anything else
// means via sent something that is not a send_join answer: a bad gateway for our client.
func decodeAnswer(via string, r io.Reader, h sendJoinHandler) (json.RawMessage, error) {
	ev, err := decodeSendJoin(r, h)
	var he handlerError
	if errors.As(err, &he) {
		return nil, he.err
	}
	if err != nil {
		return nil, &merr.Error{Status: http.StatusBadGateway, Code: "M_UNKNOWN", Message: fmt.Sprintf("send_join on %s: bad answer: %v", via, err), Cause: err}
	}
	return ev, nil
}

// sendJoinDecoded is sendJoinStream through the client's ordinary SendJoin.
func (s *Service) sendJoinDecoded(ctx context.Context, via string, roomID id.RoomID, join rooms.Remote, h sendJoinHandler) (json.RawMessage, error) {
	sj, err := s.client.SendJoin(ctx, &mfed.ReqSendJoin{RoomID: roomID, EventID: join.ID, Event: join.JSON, Via: via})
	if err != nil {
		return nil, remoteErr("send_join", via, err)
	}
	// Re-encode and stream it, so that both paths check and order the answer identically.
	b, err := json.Marshal(sj)
	if err != nil {
		return nil, fmt.Errorf("send_join on %s: encode answer: %w", via, err)
	}
	return decodeAnswer(via, bytes.NewReader(b), h)
}
