package sqlite

import (
	"context"
	"io"

	"github.com/sdskit/sdskit/core/api"
	"github.com/sdskit/sdskit/core/store"
)

// Linking this package makes the IDL's PersistenceChoice.Sqlite available to every
// SDK (sdk-go, the C library for Python): api cannot import it directly, because the
// WebAssembly build must not link SQLite.
func init() {
	api.SQLiteOpener = func(ctx context.Context, path, synchronous string) (store.Backend, io.Closer, error) {
		s, err := Open(ctx, path, Options{Synchronous: synchronous})
		if err != nil {
			return nil, nil, err
		}
		return s, s, nil
	}
}
