package fedapi

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Transactions (spec: PUT /_matrix/federation/v1/send/{txnId}): at most 50 PDUs and 100 EDUs.
// Each PDU is processed on its own and its outcome reported; a failing PDU never fails the
// transaction. A retried transaction (same origin and ID) is answered from memory.
const (
	maxTxnPDUs  = 50
	maxTxnEDUs  = 100
	maxTxnBytes = 8 << 20 // 50 PDUs of 64 KiB plus EDUs
	txnMemory   = 256     // remembered answers
)

type txnBody struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
	EDUs           []json.RawMessage `json:"edus"`
}

type pduResult struct {
	Error string `json:"error,omitempty"`
}

type txnAnswer struct {
	PDUs map[string]pduResult `json:"pdus"`
}

// txnCache remembers recent answers by origin and transaction ID, and serialises transactions
// from one origin (the spec asks origins to send one at a time; this makes retries safe).
type txnCache struct {
	mu      sync.Mutex
	answers map[string]*txnAnswer
	order   []string
	origins map[string]*sync.Mutex
}

func (t *txnCache) originLock(origin string) *sync.Mutex {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.origins == nil {
		t.origins = map[string]*sync.Mutex{}
	}
	m := t.origins[origin]
	if m == nil {
		m = &sync.Mutex{}
		t.origins[origin] = m
	}
	return m
}

func (t *txnCache) get(k string) *txnAnswer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.answers[k]
}

func (t *txnCache) put(k string, a *txnAnswer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.answers == nil {
		t.answers = map[string]*txnAnswer{}
	}
	t.answers[k] = a
	t.order = append(t.order, k)
	if len(t.order) > txnMemory {
		delete(t.answers, t.order[0])
		t.order = t.order[1:]
	}
}

func (h *core) send(c echo.Context) error {
	origin, err := Origin(c)
	if err != nil {
		return err
	}
	txnID := c.Param("txnId")
	if txnID == "" {
		return merr.MissingParam("txnId is required")
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxTxnBytes+1))
	if err != nil {
		return merr.Unknown("could not read request body")
	}
	if len(body) > maxTxnBytes {
		return merr.TooLarge("transaction too large")
	}
	if !json.Valid(body) || !utf8.Valid(body) {
		return merr.NotJSON("request body is not valid JSON")
	}
	var t txnBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&t); err != nil {
		return merr.BadJSON("transaction has the wrong shape: %v", err)
	}
	if len(t.PDUs) > maxTxnPDUs || len(t.EDUs) > maxTxnEDUs {
		return merr.BadJSON("a transaction carries at most %d PDUs and %d EDUs", maxTxnPDUs, maxTxnEDUs)
	}
	if t.Origin != "" && t.Origin != origin {
		return merr.Forbidden("the transaction's origin %q is not the signing server %q", t.Origin, origin)
	}
	lock := h.txns.originLock(origin)
	lock.Lock()
	defer lock.Unlock()
	key := origin + "\x00" + txnID
	if a := h.txns.get(key); a != nil {
		return ok(c, a)
	}
	ctx := c.Request().Context()
	h.c.Contacted(origin)
	ans := &txnAnswer{PDUs: map[string]pduResult{}}
	for _, raw := range t.PDUs {
		eid, err := h.c.HandleTxnPDU(ctx, origin, raw)
		if eid == "" {
			eid = id.EventID("")
		}
		res := pduResult{}
		if err != nil {
			res.Error = err.Error()
			h.log.Info("remote PDU not accepted", "origin", origin, "event_id", eid, "err", err)
		}
		if eid != "" {
			ans.PDUs[eid.String()] = res
		}
	}
	for _, raw := range t.EDUs {
		if err := h.c.HandleEDU(ctx, origin, raw); err != nil {
			h.log.Info("remote EDU not accepted", "origin", origin, "err", err)
		}
	}
	h.txns.put(key, ans)
	return ok(c, ans)
}
