package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// CertFile is one value of the TLS package's certmagic storage (ACME account, certificate, key,
// metadata or challenge token), kept with the time it was written because certmagic asks for it.
type CertFile struct {
	Value    []byte
	Modified time.Time
}

// CertLock is a lock record of the certmagic storage: who holds the named lock and until when.
// A holder renews Expires while it works; a record past Expires is stale (its holder died).
type CertLock struct {
	Owner   string
	Expires time.Time
}

// CertFile reads the value stored under a certmagic key; ErrNotFound when there is none.
func (t *Txn) CertFile(k string) (CertFile, error) {
	v, err := t.get(certFileKey(k))
	if err != nil {
		return CertFile{}, err
	}
	if len(v) < 8 {
		return CertFile{}, fmt.Errorf("store: cert file %q: record of %d bytes is too short", k, len(v))
	}
	return CertFile{Value: v[8:], Modified: time.Unix(0, int64(binary.BigEndian.Uint64(v)))}, nil
}

// PutCertFile writes (or overwrites) the value under a certmagic key.
func (t *Txn) PutCertFile(k string, f CertFile) error {
	v := make([]byte, 8+len(f.Value))
	binary.BigEndian.PutUint64(v, uint64(f.Modified.UnixNano()))
	copy(v[8:], f.Value)
	return t.set(certFileKey(k), v)
}

// DeleteCertFile removes one certmagic key; removing a missing key is not an error.
func (t *Txn) DeleteCertFile(k string) error { return t.del(certFileKey(k)) }

// CertFileKeys calls fn with every certmagic key that starts with prefix (plain string prefix,
// so "a/b" also matches "a/bc"; callers that mean a directory pass "a/b/"), in key order. fn
// returns false to stop.
func (t *Txn) CertFileKeys(prefix string, fn func(k string) (bool, error)) error {
	return t.scan(certFileKey(prefix), nil, false, false, func(k, _ []byte) (bool, error) {
		return fn(string(k[1:]))
	})
}

// HasCertFilePrefix reports whether any certmagic key starts with prefix.
func (t *Txn) HasCertFilePrefix(prefix string) (bool, error) {
	found := false
	err := t.CertFileKeys(prefix, func(string) (bool, error) {
		found = true
		return false, nil
	})
	return found, err
}

// CertLock reads the named lock record; ErrNotFound when nobody holds it.
func (t *Txn) CertLock(name string) (CertLock, error) {
	v, err := t.get(certLockKey(name))
	if err != nil {
		return CertLock{}, err
	}
	if len(v) < 8 {
		return CertLock{}, fmt.Errorf("store: cert lock %q: record of %d bytes is too short", name, len(v))
	}
	return CertLock{Owner: string(v[8:]), Expires: time.Unix(0, int64(binary.BigEndian.Uint64(v)))}, nil
}

// PutCertLock writes the named lock record.
func (t *Txn) PutCertLock(name string, l CertLock) error {
	var b bytes.Buffer
	b.Grow(8 + len(l.Owner))
	_ = binary.Write(&b, binary.BigEndian, uint64(l.Expires.UnixNano()))
	b.WriteString(l.Owner)
	return t.set(certLockKey(name), b.Bytes())
}

// DeleteCertLock removes the named lock record if owner still holds it (a holder that lost its
// lock to staleness must not release the new holder's).
func (t *Txn) DeleteCertLock(name, owner string) error {
	l, err := t.CertLock(name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Owner != owner {
		return nil
	}
	return t.del(certLockKey(name))
}
