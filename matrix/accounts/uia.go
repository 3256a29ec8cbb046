package accounts

import (
	"time"
)

// uiaTTL bounds how long an unfinished user-interactive auth session is kept.
const uiaTTL = 10 * time.Minute

// maxUIASessions bounds memory if clients open sessions and never finish them.
const maxUIASessions = 10000

type uiaSession struct {
	created   time.Time
	completed map[string]bool
	params    map[string]any
	data      map[string]string // request-specific data bound to the session (e.g. registration token)
}

// UIA is a user-interactive auth session's view for handlers.
type UIA struct {
	ID        string
	Completed []string
	Data      map[string]string
}

// UIASession returns (creating when id is empty or unknown) a session.
func (s *Service) UIASession(sessionID string) *UIA {
	s.uiaMu.Lock()
	defer s.uiaMu.Unlock()
	now := s.now()
	if len(s.uia) > maxUIASessions/2 {
		for k, v := range s.uia {
			if now.Sub(v.created) > uiaTTL {
				delete(s.uia, k)
			}
		}
	}
	sess, ok := s.uia[sessionID]
	if !ok || sessionID == "" {
		if len(s.uia) >= maxUIASessions {
			for k := range s.uia {
				delete(s.uia, k)
				break
			}
		}
		sessionID = randomToken(16)
		sess = &uiaSession{created: now, completed: map[string]bool{}, data: map[string]string{}}
		s.uia[sessionID] = sess
	}
	out := &UIA{ID: sessionID, Data: map[string]string{}}
	for k := range sess.completed {
		out.Completed = append(out.Completed, k)
	}
	for k, v := range sess.data {
		out.Data[k] = v
	}
	return out
}

// UIAComplete records a completed stage, with optional data to bind.
func (s *Service) UIAComplete(sessionID, stage string, data map[string]string) {
	s.uiaMu.Lock()
	defer s.uiaMu.Unlock()
	sess, ok := s.uia[sessionID]
	if !ok {
		return
	}
	sess.completed[stage] = true
	for k, v := range data {
		sess.data[k] = v
	}
}

// UIADone forgets a session once the request it guarded has succeeded.
func (s *Service) UIADone(sessionID string) {
	s.uiaMu.Lock()
	delete(s.uia, sessionID)
	s.uiaMu.Unlock()
}
