package federation

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"maunium.net/go/mautrix"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// Verifier checks what other servers send (the keyring).
type Verifier interface {
	// VerifyPDU checks a PDU's signatures and content hash for room version rv. It returns the
	// JSON to keep (the redacted form when the hash does not match, as the spec asks) or an
	// error when the event must be dropped (bad or missing signatures, malformed).
	VerifyPDU(ctx context.Context, rv id.RoomVersion, raw []byte) ([]byte, error)
	// GetKey returns remote servers' keys for the auth rules' own signature checks (restricted
	// joins, third-party invites).
	GetKey(ctx context.Context) pdu.GetKeyFunc
}

// Queue delivers PDUs to other servers (the persistent per-destination sender).
type Queue interface {
	QueuePDU(ctx context.Context, dests []string, pdu []byte) error
}

// Client is the part of mautrix's federation client this package calls; an interface so that
// tests can count or fail calls.
type Client interface {
	MakeJoin(ctx context.Context, req *mfed.ReqMakeJoin) (*mfed.RespMakeJoin, error)
	SendJoin(ctx context.Context, req *mfed.ReqSendJoin) (*mfed.RespSendJoin, error)
	MakeLeave(ctx context.Context, req *mfed.ReqMakeLeave) (*mfed.RespMakeLeave, error)
	SendLeave(ctx context.Context, req *mfed.ReqSendLeave) error
	MakeKnock(ctx context.Context, req *mfed.ReqMakeKnock) (*mfed.RespMakeKnock, error)
	SendKnock(ctx context.Context, req *mfed.ReqSendKnock) (*mfed.RespSendKnock, error)
	SendInvite(ctx context.Context, req *mfed.ReqSendInvite) (*mfed.RespSendInvite, error)
	GetMissingEvents(ctx context.Context, req *mfed.ReqGetMissingEvents) (*mfed.RespGetMissingEvents, error)
	GetEventAuthChain(ctx context.Context, serverName string, roomID id.RoomID, eventID id.EventID) (*mfed.RespGetEventAuthChain, error)
	GetStateIDs(ctx context.Context, serverName string, roomID id.RoomID, eventID id.EventID) (*mfed.RespGetStateIDs, error)
	GetEvent(ctx context.Context, serverName string, eventID id.EventID) (*mfed.RespBackfill, error)
	Backfill(ctx context.Context, req *mfed.ReqBackfill) (*mfed.RespBackfill, error)
	QueryDirectory(ctx context.Context, serverName string, roomAlias id.RoomAlias) (*mautrix.RespAliasResolve, error)
	QueryProfile(ctx context.Context, serverName string, userID id.UserID) (*mautrix.RespUserProfile, error)
	MakeFullRequest(ctx context.Context, params mfed.RequestParams) ([]byte, *http.Response, error)
}

// Service is the federation core: the incoming event pipeline and the joins, leaves, knocks and
// invites this server makes on other servers.
type Service struct {
	server string
	rooms  *rooms.Service
	keys   Verifier
	client Client
	queue  Queue
	signer events.Signer
	log    *slog.Logger
	now    func() time.Time
	eph    Ephemeral // edu.go
	todev  ToDevice
	alive  Alive
	states remoteStates // edu.go: presence, device lists, signing keys
}

// Config carries the Service's collaborators.
type Config struct {
	Rooms  *rooms.Service
	Keys   Verifier
	Client Client
	Queue  Queue
	Signer events.Signer
	Log    *slog.Logger
}

// New makes the federation core.
func New(c Config) *Service {
	s := &Service{server: c.Signer.ServerName, rooms: c.Rooms, keys: c.Keys, client: c.Client, queue: c.Queue, signer: c.Signer, log: c.Log, now: time.Now}
	c.Rooms.SetRemoteInviter(s.countersign)
	c.Rooms.SetBackfiller(s.backfill)
	c.Rooms.SetHierarchyFetcher(newHierarchyFetcher(s.server, s.client, time.Now).fetch)
	c.Rooms.SetTimestampFetcher(s.remoteTimestamp)
	return s
}

// ServerName is this server's name.
func (s *Service) ServerName() string { return s.server }

// parse verifies and decodes one PDU of a room of version rv.
func (s *Service) parse(ctx context.Context, rv id.RoomVersion, raw []byte) (rooms.Remote, error) {
	if len(raw) > events.MaxPDUSize {
		return rooms.Remote{}, merr.TooLarge("event is %d bytes; the limit is %d", len(raw), events.MaxPDUSize)
	}
	kept, err := s.keys.VerifyPDU(ctx, rv, raw)
	if err != nil {
		if _, ok := merr.As(err); ok {
			return rooms.Remote{}, err
		}
		// A signature or format failure is the sender's fault, not ours.
		return rooms.Remote{}, merr.Forbidden("event refused: %v", err)
	}
	p, err := events.Parse(kept)
	if err != nil {
		return rooms.Remote{}, merr.BadJSON("malformed event: %v", err)
	}
	eid, err := events.EventID(rv, p)
	if err != nil {
		return rooms.Remote{}, merr.BadJSON("event ID: %v", err)
	}
	p.InternalMeta.EventID = eid
	return rooms.Remote{ID: eid, PDU: p, JSON: kept}, nil
}

// parseAll verifies a list of PDUs, dropping (and logging) those that fail.
func (s *Service) parseAll(ctx context.Context, rv id.RoomVersion, raws []json.RawMessage) []rooms.Remote {
	out := make([]rooms.Remote, 0, len(raws))
	for _, raw := range raws {
		ev, err := s.parse(ctx, rv, raw)
		if err != nil {
			s.log.Info("dropped remote event", "err", err)
			continue
		}
		out = append(out, ev)
	}
	return out
}

// sign signs a proto event (make_join/leave/knock answer) as this server and returns it with its
// event ID.
func (s *Service) sign(rv id.RoomVersion, p *pdu.PDU) (rooms.Remote, error) {
	// SignPDU gives v1/v2 rooms their own format: an event_id of ours, [id, hashes] references.
	eid, b, err := events.SignPDU(rv, p, s.signer)
	if err != nil {
		return rooms.Remote{}, err
	}
	p.InternalMeta.EventID = eid
	return rooms.Remote{ID: eid, PDU: p, JSON: b}, nil
}
