package chstore

import (
	"context"
	"io/fs"
)

// MigrateFS applies the migrations in fsys instead of the embedded ones.
func (s *Store) MigrateFS(ctx context.Context, fsys fs.FS) error {
	return s.migrateFS(ctx, fsys)
}
