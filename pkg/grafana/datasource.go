// Package grafana is Leakline's Grafana backend datasource plugin
// (plugin id leakline-findings-datasource): typed queries over the findings
// in ClickHouse for dashboards and alert rules, a health check, resources
// for query editors, a role-checked and audited evidence reveal, and a live
// stream of new findings. The plugin binary is services/grafana-plugin;
// docs/GRAFANA.md describes settings, query types, provisioning and deep
// links.
//
// # What may reach ClickHouse and Grafana
//
// There is no free SQL: each query type is a fixed query of pkg/chstore
// whose user-supplied values (rule ids, actors, channels, prefixes, time
// ranges) travel as external data, never in the query text, so nothing a
// user typed reaches system.query_log. The pipeline never stored a raw PII
// value, so no frame can carry one: evidence is masked. HMAC tokens are
// not part of any frame; they are returned only by the reveal resource, to
// Editors and Admins, and every reveal request writes one row to
// evidence_access_audit.
package grafana

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"

	"github.com/leakline/leakline/pkg/chstore"
)

// PluginID is the plugin's id (plugin.json "id").
const PluginID = "leakline-findings-datasource"

// RequiredSchemaVersion is the lowest ClickHouse schema version
// (chstore.SchemaVersion) the plugin works with.
const RequiredSchemaVersion = chstore.InvestigationSchemaVersion

// Datasource is one configured instance of the datasource: its settings and
// its ClickHouse connection pool. It implements the SDK's QueryData,
// CheckHealth, CallResource and Stream handlers, and Dispose.
type Datasource struct {
	settings Settings
	uid      string
	log      log.Logger
	now      func() time.Time
	resource backend.CallResourceHandler

	mu     sync.Mutex
	store  *chstore.Store // nil until the first successful connection
	closed bool
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ backend.StreamHandler         = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// NewDatasource is the instance factory (datasource.InstanceFactoryFunc):
// it validates the settings. It does not connect: the pool is opened on
// first use, so a datasource whose ClickHouse is down still loads, and its
// health check says why it cannot connect.
func NewDatasource(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	set, err := LoadSettings(s)
	if err != nil {
		return nil, err
	}
	d := &Datasource{
		settings: set,
		uid:      s.UID,
		log:      log.DefaultLogger.With("datasource", s.UID),
		now:      time.Now,
	}
	d.resource = httpadapter.New(d.routes())
	return d, nil
}

// Dispose closes the connection pool; Grafana calls it when the instance's
// settings change or the datasource is deleted.
func (d *Datasource) Dispose() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			d.log.Warn("closing the ClickHouse pool", "error", err)
		}
		d.store = nil
	}
}

// errDisposed is returned by calls that race with Dispose.
var errDisposed = errors.New("leakline datasource: instance disposed (settings changed); retry")

// storeFor returns the instance's pool, connecting first if needed.
func (d *Datasource) storeFor(ctx context.Context) (*chstore.Store, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errDisposed
	}
	if d.store != nil {
		return d.store, nil
	}
	st, err := chstore.Open(ctx, d.settings.storeConfig())
	if err != nil {
		return nil, fmt.Errorf("cannot connect to ClickHouse at %s (database %s): %w%s", d.settings.Address, d.settings.Database, err, d.settings.connectHint(err))
	}
	d.store = st
	return st, nil
}

// CheckHealth reports whether ClickHouse answers and its schema is recent
// enough.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(d.settings.DialTimeout)+time.Duration(d.settings.QueryTimeout))
	defer cancel()
	fail := func(format string, a ...any) (*backend.CheckHealthResult, error) {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: fmt.Sprintf(format, a...)}, nil
	}
	st, err := d.storeFor(ctx)
	if err != nil {
		return fail("%v", err)
	}
	addr, db := d.settings.Address, d.settings.Database
	pctx, pcancel := context.WithTimeout(ctx, time.Duration(d.settings.DialTimeout))
	err = st.Conn().Ping(pctx)
	pcancel()
	if err != nil {
		return fail("ClickHouse at %s (database %s) does not answer: %v", addr, db, err)
	}
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		return fail("ClickHouse at %s answers, but reading the schema version of database %s failed: %v", addr, db, err)
	}
	if v < RequiredSchemaVersion {
		return fail("ClickHouse at %s answers, but database %s has schema version %d and this plugin needs %d or later: "+
			"run the migrations (the chsink service applies them when it starts)", addr, db, v, RequiredSchemaVersion)
	}
	server := "ClickHouse"
	if sv, err := st.Conn().ServerVersion(); err == nil {
		server = fmt.Sprintf("ClickHouse %d.%d.%d", sv.Version.Major, sv.Version.Minor, sv.Version.Patch)
	}
	over := ""
	if d.settings.Secure {
		over = " over TLS"
	}
	return &backend.CheckHealthResult{
		Status:  backend.HealthStatusOk,
		Message: fmt.Sprintf("%s at %s%s, database %s, schema version %d", server, addr, over, db, v),
	}, nil
}

// CallResource serves the resources (see routes).
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	return d.resource.CallResource(ctx, req, sender)
}

// routes are the resources: lookups for query editors and the reveal.
func (d *Datasource) routes() http.Handler {
	mux := http.NewServeMux()
	for _, what := range []string{chstore.LookupRules, chstore.LookupActors, chstore.LookupChannels, chstore.LookupSeverities} {
		mux.HandleFunc("GET /"+what, d.handleLookup(what))
	}
	mux.HandleFunc("GET /reveal", d.handleReveal)
	mux.HandleFunc("POST /reveal", d.handleReveal)
	return mux
}
