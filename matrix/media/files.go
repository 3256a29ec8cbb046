package media

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// errTooLarge is returned by writeBlob when the content passes the limit.
var errTooLarge = errors.New("media: content too large")

// blobPath is where the content with this hex SHA-256 lives.
func (s *Service) blobPath(hash string) string {
	return filepath.Join(s.dir, hash[0:2], hash[2:4], hash)
}

// thumbPath is where a cached thumbnail of the content with this hash lives.
func (s *Service) thumbPath(hash string, w, h int, method string) string {
	return filepath.Join(s.dir, "thumbnails", hash[0:2], hash[2:4], fmt.Sprintf("%s-%dx%d-%s", hash, w, h, method))
}

// writeBlob streams r to disk (at most limit bytes), fsyncs it and moves it to its
// content address. It returns the hex SHA-256 and the size.
func (s *Service) writeBlob(r io.Reader, limit int64) (string, int64, error) {
	tmpDir := filepath.Join(s.dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return "", 0, fmt.Errorf("media: create %s: %w", tmpDir, err)
	}
	f, err := os.CreateTemp(tmpDir, "upload-*")
	if err != nil {
		return "", 0, fmt.Errorf("media: temp file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
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
		return "", 0, err
	}
	hash := hex.EncodeToString(h.Sum(nil))
	if err := s.placeFile(tmp, s.blobPath(hash)); err != nil {
		return "", 0, err
	}
	return hash, n, nil
}

// placeFile renames tmp to dst (creating dst's directory). An existing dst is the same content.
func (s *Service) placeFile(tmp, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("media: create dir: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("media: place file: %w", err)
	}
	return nil
}

// writeFileAtomic writes b to dst through a temp file (used for thumbnails; no fsync, since a
// thumbnail lost to a power cut is simply made again).
func (s *Service) writeFileAtomic(dst string, b []byte) error {
	tmpDir := filepath.Join(s.dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(tmpDir, "thumb-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return s.placeFile(tmp, dst)
}
