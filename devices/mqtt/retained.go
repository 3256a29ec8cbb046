package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"
)

// retainedFlushDelay batches bursts (a Zigbee2MQTT start publishes every config at once) into
// one write.
const retainedFlushDelay = time.Second

// maxRetainedFile bounds what is kept on disk; configs are a few hundred bytes each.
const maxRetainedFile = 8 << 20

// retainedStore is a mochi storage hook that keeps the retained messages under a few topic
// prefixes (discovery configs, Zigbee2MQTT's bridge topics) in one JSON file, so that devices
// announced before a restart of Hearth are still known after it. Device states are not kept:
// they change often (SD-card wear) and devices republish them anyway.
type retainedStore struct {
	mochi.HookBase
	path     string
	prefixes []string
	log      *slog.Logger

	mu    sync.Mutex
	msgs  map[string]retainedRecord
	dirty bool
	kick  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

type retainedRecord struct {
	Topic   string `json:"topic"`
	Payload []byte `json:"payload"`
	QoS     byte   `json:"qos"`
}

func newRetainedStore(path string, prefixes []string, log *slog.Logger) *retainedStore {
	s := &retainedStore{
		path: path, prefixes: prefixes, log: log,
		msgs: make(map[string]retainedRecord),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go s.flusher()
	return s
}

func (s *retainedStore) ID() string { return "hearth-retained-file" }

func (s *retainedStore) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnRetainMessage, mochi.StoredRetainedMessages}, []byte{b})
}

func (s *retainedStore) keeps(topic string) bool {
	for _, p := range s.prefixes {
		if topic == p || strings.HasPrefix(topic, p+"/") {
			return true
		}
	}
	return false
}

// StoredRetainedMessages loads the file when the broker starts. A missing file is an empty
// store; a corrupt one is logged and ignored rather than keeping the broker down.
func (s *retainedStore) StoredRetainedMessages() ([]storage.Message, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read retained messages: %w", err)
	}
	var recs []retainedRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		s.log.Warn("mqtt broker: retained message file is corrupt; starting empty", "path", s.path, "err", err)
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.Message, 0, len(recs))
	for _, r := range recs {
		if !s.keeps(r.Topic) || len(r.Payload) == 0 {
			continue
		}
		s.msgs[r.Topic] = r
		out = append(out, storage.Message{
			TopicName: r.Topic, Payload: r.Payload, T: storage.RetainedKey,
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true, Qos: r.QoS},
			Created:     time.Now().Unix(),
		})
	}
	return out, nil
}

func (s *retainedStore) OnRetainMessage(_ *mochi.Client, pk packets.Packet, r int64) {
	if !s.keeps(pk.TopicName) {
		return
	}
	s.mu.Lock()
	if r == -1 || len(pk.Payload) == 0 {
		delete(s.msgs, pk.TopicName)
	} else {
		s.msgs[pk.TopicName] = retainedRecord{Topic: pk.TopicName, Payload: bytes.Clone(pk.Payload), QoS: pk.FixedHeader.Qos}
	}
	s.dirty = true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Stop writes what is pending; mochi calls it when the broker closes.
func (s *retainedStore) Stop() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	return s.flush()
}

func (s *retainedStore) flusher() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		}
		select {
		case <-s.stop:
			return
		case <-time.After(retainedFlushDelay):
		}
		if err := s.flush(); err != nil {
			s.log.Warn("mqtt broker: saving retained messages", "err", err)
		}
	}
}

// flush writes the file atomically (temp file, fsync, rename) so a power cut leaves either the
// old or the new content.
func (s *retainedStore) flush() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	recs := make([]retainedRecord, 0, len(s.msgs))
	for _, t := range sortedKeys(s.msgs) {
		recs = append(recs, s.msgs[t])
	}
	s.dirty = false
	s.mu.Unlock()
	b, err := json.Marshal(recs)
	if err != nil {
		return fmt.Errorf("encode retained messages: %w", err)
	}
	if len(b) > maxRetainedFile {
		return fmt.Errorf("retained messages take %d bytes, more than the %d kept on disk", len(b), maxRetainedFile)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".retained-*")
	if err != nil {
		return fmt.Errorf("save retained messages: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save retained messages: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save retained messages: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save retained messages: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("save retained messages: %w", err)
	}
	return nil
}
