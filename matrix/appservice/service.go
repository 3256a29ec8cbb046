package appservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearth-home/hearth/appliance/bus"
	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Service holds the registered application services and their transaction workers.
type Service struct {
	st      *store.Store
	acc     *accounts.Service
	log     *slog.Logger
	list    []*AppService
	byToken map[string]*AppService
	byID    map[string]*AppService
	client  *http.Client

	// MinBackoff and MaxBackoff bound the wait between retries of a failed transaction.
	MinBackoff, MaxBackoff time.Duration

	b       *bus.Bus[change.Change]
	sub     *bus.Sub[change.Change]
	workers []*worker
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// New builds the service and makes sure every sender user exists.
func New(st *store.Store, acc *accounts.Service, list []*AppService, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{st: st, acc: acc, log: log, list: list, byToken: map[string]*AppService{}, byID: map[string]*AppService{},
		client:     &http.Client{Timeout: 30 * time.Second},
		MinBackoff: 500 * time.Millisecond, MaxBackoff: 5 * time.Minute}
	for _, a := range list {
		s.byToken[a.Reg.AppToken] = a
		s.byID[a.Reg.ID] = a
		if _, err := acc.User(context.Background(), a.Reg.SenderLocalpart); err != nil {
			if _, err := acc.Register(context.Background(), a.Reg.SenderLocalpart, "", false); err != nil {
				return nil, fmt.Errorf("appservice %s: create sender: %w", a.Reg.ID, err)
			}
		}
	}
	return s, nil
}

// List returns the registered services.
func (s *Service) List() []*AppService { return s.list }

// ByToken finds the service whose as_token this is.
func (s *Service) ByToken(tok string) *AppService { return s.byToken[tok] }

// ByID finds a service by its registration id.
func (s *Service) ByID(id string) *AppService { return s.byID[id] }

// ExclusiveUser returns the service that holds a user ID exclusively, if any.
func (s *Service) ExclusiveUser(u string) *AppService {
	for _, a := range s.list {
		if a.ExclusiveUser(u) {
			return a
		}
	}
	return nil
}

// ExclusiveAlias returns the service that holds an alias exclusively, if any.
func (s *Service) ExclusiveAlias(al string) *AppService {
	for _, a := range s.list {
		if a.ExclusiveAlias(al) {
			return a
		}
	}
	return nil
}

func (s *Service) do(ctx context.Context, a *AppService, method, path string, body any) (int, []byte, error) {
	if a.Reg.URL == "" {
		return 0, nil, errNoURL
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.Reg.URL, "/")+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.Reg.ServerToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, b, nil
}

var errNoURL = errors.New("appservice has no URL")

// Ping calls the service's /ping and reports the round trip, with the spec's errors.
func (s *Service) Ping(ctx context.Context, a *AppService, txnID string) (time.Duration, error) {
	if a.Reg.URL == "" {
		return 0, &merr.Error{Status: http.StatusBadRequest, Code: "M_URL_NOT_SET", Message: "the application service has no URL"}
	}
	body := map[string]any{}
	if txnID != "" {
		body["transaction_id"] = txnID
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t0 := time.Now()
	status, resp, err := s.do(ctx, a, http.MethodPost, "/_matrix/app/v1/ping", body)
	d := time.Since(t0)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Timeout") {
			return 0, &merr.Error{Status: http.StatusGatewayTimeout, Code: "M_CONNECTION_TIMEOUT", Message: "the application service did not answer in time"}
		}
		return 0, &merr.Error{Status: http.StatusBadGateway, Code: "M_CONNECTION_FAILED", Message: "could not reach the application service"}
	}
	if status < 200 || status > 299 {
		return 0, (&merr.Error{Status: http.StatusBadGateway, Code: "M_BAD_STATUS", Message: "the application service answered with an error"}).With("status", status).With("body", string(resp))
	}
	return d, nil
}

// QueryUser asks the service whose namespace holds a user ID whether it exists (the service
// creates it if so). False when no service claims the ID or the answer is not 2xx.
func (s *Service) QueryUser(ctx context.Context, userID string) bool {
	for _, a := range s.list {
		if !match(a.users, userID, false) || a.Reg.URL == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		status, _, err := s.do(ctx, a, http.MethodGet, "/_matrix/app/v1/users/"+url.PathEscape(userID), nil)
		cancel()
		if err == nil && status >= 200 && status <= 299 {
			return true
		}
	}
	return false
}

// txnName is the name of the persisted transaction counter; posName the position.
const (
	posName = "pos"
	txnName = "txn"
)

// Watch starts one transaction worker per service with a URL.
func (s *Service) Watch(b *bus.Bus[change.Change]) {
	if len(s.list) == 0 {
		return
	}
	s.b = b
	s.stop = make(chan struct{})
	for _, a := range s.list {
		if a.Reg.URL == "" {
			continue
		}
		w := &worker{s: s, as: a, wake: make(chan struct{}, 1)}
		s.workers = append(s.workers, w)
	}
	s.sub = b.Subscribe(func(c change.Change) {
		if c.Kind != change.Event {
			return
		}
		for _, w := range s.workers {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	})
	for _, w := range s.workers {
		s.wg.Add(1)
		go w.run()
	}
}

// Close stops the workers (before the store closes).
func (s *Service) Close() {
	s.once.Do(func() {
		if s.stop == nil {
			return
		}
		s.b.Unsubscribe(s.sub)
		close(s.stop)
		s.wg.Wait()
	})
}

func (s *Service) state(as, name string) (uint64, error) {
	var v uint64
	err := s.st.View(func(txn *store.Txn) (err error) { v, err = txn.AppServiceState(as, name); return })
	return v, err
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
