package grafana

import "github.com/leakline/leakline/pkg/chstore"

// StoreOf is d's connection pool, nil if it has none.
func StoreOf(d *Datasource) *chstore.Store {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.store
}
