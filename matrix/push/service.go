package push

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/pushrules"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// AccountData is what push needs from accounts: writing the m.push_rules account data.
type AccountData interface {
	PutServerAccountData(ctx context.Context, user id.UserID, room uint64, roomID, typ string, content json.RawMessage) error
}

// MaxNotifications is how many notifications are kept per user for /notifications.
const MaxNotifications = 500

// Service is push rules, evaluation, counts, notifications and pushers.
type Service struct {
	st     *store.Store
	acct   AccountData
	server string
	log    *slog.Logger

	mu      gosync.Mutex // serialises rule and pusher writes
	cacheMu gosync.Mutex
	cache   map[string]*pushrules.PushRuleset // evaluation rulesets by user

	evaluated atomic.Uint64                     // every event position <= evaluated has been evaluated
	slowUntil atomic.Int64                      // unix nanos until which AwaitCounts does not wait for evaluation
	views     roomViews                         // room state for evaluation, by snapshot (evalroom.go)
	skipUser  atomic.Pointer[func(string) bool] // users never evaluated for (SkipUsers)
	progMu    gosync.Mutex
	progress  chan struct{} // closed when evaluated advances
	kick      chan struct{}
	stop      chan struct{}
	stopOnce  gosync.Once
	wg        gosync.WaitGroup

	deliveries chan delivery
	client     *http.Client
	// RetryBase is the first retry delay of a failed delivery (doubled each time, at most
	// MaxAttempts tries). Set before Watch.
	RetryBase   time.Duration
	MaxAttempts int
	// LegacyMentions serves the body-matching mention rules of spec v1.16 with the defaults
	// (push.legacy_mention_rules; off by default, as in v1.17 and later). Set before Watch.
	LegacyMentions bool

	copyMu gosync.Mutex
	copies []roomRuleCopy // room rules to carry into upgraded rooms (upgrade.go)
}

// New builds the service. Call Watch to start evaluation and delivery, Close to stop.
func New(st *store.Store, acct AccountData, serverName string, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		st: st, acct: acct, server: serverName, log: log,
		cache:      map[string]*pushrules.PushRuleset{},
		progress:   make(chan struct{}),
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		deliveries: make(chan delivery, 1024),
		client:     &http.Client{Timeout: 15 * time.Second},
		RetryBase:  2 * time.Second, MaxAttempts: 6,
	}
}

// defaults is the server-default ruleset this server serves for user.
func (s *Service) defaults(user id.UserID) *Ruleset {
	rs := Defaults(user)
	if s.LegacyMentions {
		AddLegacyMentionRules(rs, user)
	}
	return rs
}

// Close stops evaluation and delivery and waits for them.
func (s *Service) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
}

func (s *Service) loadUserRules(txn *store.Txn, user id.UserID) (*userRules, error) {
	b, err := txn.PushRules(user.String())
	if err != nil {
		return nil, err
	}
	return decodeUserRules(b)
}

// Rules returns the user's effective ruleset.
func (s *Service) Rules(ctx context.Context, user id.UserID) (*Ruleset, error) {
	var ur *userRules
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		ur, err = s.loadUserRules(txn, user)
		return err
	})
	if err != nil {
		return nil, err
	}
	return merge(s.defaults(user), ur), nil
}

// Rule returns one rule (M_NOT_FOUND when absent, also for kinds this server does not have:
// clients probe for rules of newer kinds such as MSC4306's postcontent and treat a 404 as
// "not here").
func (s *Service) Rule(ctx context.Context, user id.UserID, kind, ruleID string) (*Rule, error) {
	if !ValidKind(kind) {
		return nil, merr.NotFound("no push rule of kind %q here", kind)
	}
	rs, err := s.Rules(ctx, user)
	if err != nil {
		return nil, err
	}
	r := rs.Find(kind, ruleID)
	if r == nil {
		return nil, merr.NotFound("push rule not found")
	}
	return r, nil
}

// update changes the user's stored rules under the write lock, then refreshes the evaluation
// cache and the m.push_rules account data.
func (s *Service) update(ctx context.Context, user id.UserID, fn func(ur *userRules) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.st.Update(func(txn *store.Txn) error {
		ur, err := s.loadUserRules(txn, user)
		if err != nil {
			return err
		}
		if err := fn(ur); err != nil {
			return err
		}
		b, err := json.Marshal(ur)
		if err != nil {
			return err
		}
		return txn.PutPushRules(user.String(), b)
	})
	if err != nil {
		return err
	}
	s.cacheMu.Lock()
	delete(s.cache, user.String())
	s.cacheMu.Unlock()
	rs, err := s.Rules(ctx, user)
	if err != nil {
		return err
	}
	content, err := json.Marshal(map[string]any{"global": rs})
	if err != nil {
		return err
	}
	if s.acct != nil {
		return s.acct.PutServerAccountData(ctx, user, 0, "", "m.push_rules", content)
	}
	return nil
}

// ruleBody is the body of PUT /pushrules/global/{kind}/{ruleId}.
type ruleBody struct {
	Actions    []any       `json:"actions"`
	Conditions []Condition `json:"conditions"`
	Pattern    *string     `json:"pattern"`
}

func validRuleID(kind, ruleID string) error {
	switch {
	case ruleID == "":
		return merr.InvalidParam("empty rule ID")
	case strings.HasPrefix(ruleID, "."):
		return merr.InvalidParam("rule IDs starting with '.' are reserved for server-default rules")
	case strings.ContainsAny(ruleID, "/\\"):
		return merr.InvalidParam("rule IDs may not contain slashes")
	case kind == "room" && !strings.HasPrefix(ruleID, "!"):
		return merr.InvalidParam("room rule IDs are room IDs")
	case kind == "sender" && !strings.HasPrefix(ruleID, "@"):
		return merr.InvalidParam("sender rule IDs are user IDs")
	}
	return nil
}

func validActions(actions []any) error {
	if actions == nil {
		return merr.MissingParam("actions is required")
	}
	for _, a := range actions {
		switch v := a.(type) {
		case string:
			switch v {
			case "notify", "dont_notify", "coalesce":
			default:
				return merr.InvalidParam("unknown push action %q", v)
			}
		case map[string]any:
			if t, ok := v["set_tweak"].(string); !ok || t == "" {
				return merr.InvalidParam("push action objects need set_tweak")
			}
		default:
			return merr.InvalidParam("invalid push action")
		}
	}
	return nil
}

// PutRule creates or replaces a user-defined rule, placed before or after another user rule
// of the same kind when asked (otherwise a new rule comes first, a replaced one stays put).
func (s *Service) PutRule(ctx context.Context, user id.UserID, kind, ruleID, before, after string, body []byte) error {
	if !ValidKind(kind) {
		return merr.InvalidParam("unknown push rule kind %q", kind)
	}
	if err := validRuleID(kind, ruleID); err != nil {
		return err
	}
	var b ruleBody
	if err := json.Unmarshal(body, &b); err != nil {
		return merr.BadJSON("invalid push rule: %v", err)
	}
	if err := validActions(b.Actions); err != nil {
		return err
	}
	r := Rule{RuleID: ruleID, Enabled: true, Actions: b.Actions}
	switch kind {
	case "content":
		if b.Pattern == nil || *b.Pattern == "" {
			return merr.MissingParam("content rules need a pattern")
		}
		r.Pattern = b.Pattern
	case "override", "underride":
		r.Conditions = b.Conditions
		if r.Conditions == nil {
			r.Conditions = []Condition{}
		}
		for _, c := range r.Conditions {
			if c.Kind == "" {
				return merr.InvalidParam("push conditions need a kind")
			}
		}
	}
	defaults := s.defaults(user)
	for _, rel := range []string{before, after} {
		if rel != "" && defaults.Find(kind, rel) != nil {
			return merr.InvalidParam("a rule cannot be placed relative to a server-default rule")
		}
	}
	return s.update(ctx, user, func(ur *userRules) error {
		if ur.Rules == nil {
			ur.Rules = map[string][]Rule{}
		}
		rules := ur.Rules[kind]
		at := -1
		for i := range rules {
			if rules[i].RuleID == ruleID {
				at = i
			}
		}
		if at >= 0 && before == "" && after == "" {
			rules[at] = r
			return nil
		}
		if at >= 0 {
			rules = append(rules[:at:at], rules[at+1:]...)
		}
		pos := 0
		if rel := before + after; rel != "" {
			pos = -1
			for i := range rules {
				if rules[i].RuleID == rel {
					pos = i
				}
			}
			if pos < 0 {
				return merr.NotFound("push rule %q not found", rel)
			}
			if after != "" {
				pos++
			}
		}
		rules = append(rules[:pos:pos], append([]Rule{r}, rules[pos:]...)...)
		ur.Rules[kind] = rules
		return nil
	})
}

// DeleteRule removes a user-defined rule; server-default rules cannot be deleted.
func (s *Service) DeleteRule(ctx context.Context, user id.UserID, kind, ruleID string) error {
	if !ValidKind(kind) {
		return merr.InvalidParam("unknown push rule kind %q", kind)
	}
	if s.defaults(user).Find(kind, ruleID) != nil {
		return merr.InvalidParam("server-default rules cannot be deleted")
	}
	return s.update(ctx, user, func(ur *userRules) error {
		rules := ur.Rules[kind]
		for i := range rules {
			if rules[i].RuleID == ruleID {
				ur.Rules[kind] = append(rules[:i:i], rules[i+1:]...)
				return nil
			}
		}
		return merr.NotFound("push rule not found")
	})
}

// modify changes one rule (user-defined or default) in place.
func (s *Service) modify(ctx context.Context, user id.UserID, kind, ruleID string, fn func(r *Rule, o *override)) error {
	if !ValidKind(kind) {
		return merr.InvalidParam("unknown push rule kind %q", kind)
	}
	isDefault := s.defaults(user).Find(kind, ruleID) != nil
	return s.update(ctx, user, func(ur *userRules) error {
		if isDefault {
			if ur.Overrides == nil {
				ur.Overrides = map[string]override{}
			}
			o := ur.Overrides[kind+"/"+ruleID]
			fn(nil, &o)
			ur.Overrides[kind+"/"+ruleID] = o
			return nil
		}
		rules := ur.Rules[kind]
		for i := range rules {
			if rules[i].RuleID == ruleID {
				fn(&rules[i], nil)
				return nil
			}
		}
		return merr.NotFound("push rule not found")
	})
}

// SetEnabled enables or disables a rule.
func (s *Service) SetEnabled(ctx context.Context, user id.UserID, kind, ruleID string, enabled bool) error {
	return s.modify(ctx, user, kind, ruleID, func(r *Rule, o *override) {
		if r != nil {
			r.Enabled = enabled
		} else {
			o.Enabled = &enabled
		}
	})
}

// SetActions replaces a rule's actions.
func (s *Service) SetActions(ctx context.Context, user id.UserID, kind, ruleID string, actions []any) error {
	if err := validActions(actions); err != nil {
		return err
	}
	return s.modify(ctx, user, kind, ruleID, func(r *Rule, o *override) {
		if r != nil {
			r.Actions = actions
		} else {
			o.Actions = actions
		}
	})
}

// evalRules returns the user's ruleset in mautrix's form, cached until the user changes it.
func (s *Service) evalRules(txn *store.Txn, user string) (*pushrules.PushRuleset, error) {
	s.cacheMu.Lock()
	rs, ok := s.cache[user]
	s.cacheMu.Unlock()
	if ok {
		return rs, nil
	}
	ur, err := s.loadUserRules(txn, id.UserID(user))
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(merge(s.defaults(id.UserID(user)), ur))
	if err != nil {
		return nil, err
	}
	rs = &pushrules.PushRuleset{}
	if err := json.Unmarshal(b, rs); err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	if len(s.cache) > 4096 {
		clear(s.cache)
	}
	s.cache[user] = rs
	s.cacheMu.Unlock()
	return rs, nil
}
