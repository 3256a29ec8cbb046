package media

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// streamTemp copies r (at most limit bytes, errTooLarge beyond) to an fsynced temp file while
// hashing it, and returns the temp path, hex SHA-256 and size. Unlike writeBlob it does not
// place the file: the remote cache places it together with its record, under the lock the
// sweeper takes, so a sweep never deletes a file between the two. The caller removes the
// temp file if it is not placed.
func (s *Service) streamTemp(r io.Reader, limit int64) (string, string, int64, error) {
	tmpDir := filepath.Join(s.dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return "", "", 0, fmt.Errorf("media: create %s: %w", tmpDir, err)
	}
	f, err := os.CreateTemp(tmpDir, "remote-*")
	if err != nil {
		return "", "", 0, fmt.Errorf("media: temp file: %w", err)
	}
	tmp := f.Name()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = errTooLarge
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", "", 0, err
	}
	return tmp, hex.EncodeToString(h.Sum(nil)), n, nil
}
