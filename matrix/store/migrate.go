package store

import (
	"fmt"
	"strconv"

	badger "github.com/dgraph-io/badger/v4"
)

// migrate brings an existing store to schemaVersion. Version 1 is the first layout; later
// versions add a step here, each in its own transaction, so a crash mid-migration resumes.
func (s *Store) migrate() error {
	return s.db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get(metaKey("schema"))
		if err == badger.ErrKeyNotFound {
			return txn.Set(metaKey("schema"), []byte(strconv.Itoa(schemaVersion)))
		}
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		v, _ := it.ValueCopy(nil)
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("bad schema version %q: %w", v, err)
		}
		if n > schemaVersion {
			return fmt.Errorf("store schema %d is newer than this binary (%d): refusing to open", n, schemaVersion)
		}
		return nil
	})
}
