package grafana_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/leakline/leakline/pkg/grafana"
	"github.com/leakline/leakline/pkg/testenv"
)

// TestCheckHealth checks the health check over gRPC: a migrated database,
// an unmigrated one, a ClickHouse that stopped under an open pool, one that
// is stopped before the first connection, and invalid settings.
func TestCheckHealth(t *testing.T) {
	st := testenv.ClickHouseStore(t, srv)
	plugin, _ := startPlugin(t)

	// A second, private server that this test stops.
	second := testenv.ClickHouse(t)
	secondStore := testenv.ClickHouseStore(t, second)

	check := func(t *testing.T, s backend.DataSourceInstanceSettings) *backend.CheckHealthResult {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := plugin.Client.CheckHealth(ctx, &backend.CheckHealthRequest{PluginContext: pluginContext(s, grafana.RoleAdmin)})
		if err != nil {
			t.Fatalf("CheckHealth: %v", err)
		}
		return res
	}
	for _, tc := range []struct {
		name     string
		settings func() backend.DataSourceInstanceSettings
		before   func(t *testing.T)
		status   backend.HealthStatus
		want     []string
	}{
		{
			name: "migrated",
			settings: func() backend.DataSourceInstanceSettings {
				return instanceSettings("h-ok", srv.Addr(), st.Database(), nil)
			},
			status: backend.HealthStatusOk,
			want:   []string{"ClickHouse ", srv.Addr(), st.Database(), "schema version"},
		},
		{
			name: "not migrated",
			settings: func() backend.DataSourceInstanceSettings {
				return instanceSettings("h-old", srv.Addr(), st.Database()+"_empty", nil)
			},
			status: backend.HealthStatusError,
			want:   []string{srv.Addr(), "schema version 0", "needs 4", "migrations"},
		},
		{
			name: "second server up",
			settings: func() backend.DataSourceInstanceSettings {
				return instanceSettings("h-2", second.Addr(), secondStore.Database(), nil)
			},
			status: backend.HealthStatusOk,
			want:   []string{second.Addr()},
		},
		{
			name: "second server stopped under the open pool",
			settings: func() backend.DataSourceInstanceSettings {
				return instanceSettings("h-2", second.Addr(), secondStore.Database(), nil)
			},
			before: func(t *testing.T) {
				secondStore.Close()
				if err := second.Stop(); err != nil {
					t.Fatal(err)
				}
			},
			status: backend.HealthStatusError,
			want:   []string{"ClickHouse at " + second.Addr(), secondStore.Database()},
		},
		{
			name: "stopped server, fresh instance",
			settings: func() backend.DataSourceInstanceSettings {
				return instanceSettings("h-3", second.Addr(), secondStore.Database(), nil)
			},
			status: backend.HealthStatusError,
			want:   []string{"cannot connect to ClickHouse at " + second.Addr(), "refused"},
		},
		{
			name: "no address",
			settings: func() backend.DataSourceInstanceSettings {
				return instanceSettings("h-4", "", "x", map[string]any{"address": nil})
			},
			status: backend.HealthStatusError,
			want:   []string{"jsonData.address", "required"},
		},
		{
			name: "password in jsonData",
			settings: func() backend.DataSourceInstanceSettings {
				return instanceSettings("h-5", srv.Addr(), st.Database(), map[string]any{"password": "hunter2"})
			},
			status: backend.HealthStatusError,
			want:   []string{"secureJsonData"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			begin := time.Now()
			res := check(t, tc.settings())
			if res.Status != tc.status {
				t.Fatalf("status %v (%s), want %v", res.Status, res.Message, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Message, w) {
					t.Errorf("message %q lacks %q", res.Message, w)
				}
			}
			if strings.Contains(res.Message, "hunter2") {
				t.Error("the message shows the password")
			}
			t.Logf("%v: %s", time.Since(begin).Round(time.Millisecond), res.Message)
		})
	}
}

// TestDisposeClosesPool checks that Dispose closes the instance's pool and
// that a disposed instance refuses further work.
func TestDisposeClosesPool(t *testing.T) {
	st := testenv.ClickHouseStore(t, srv)
	inst, err := grafana.NewDatasource(context.Background(), instanceSettings("d", srv.Addr(), st.Database(), nil))
	if err != nil {
		t.Fatal(err)
	}
	ds := inst.(*grafana.Datasource)
	ctx := context.Background()
	res, err := ds.CheckHealth(ctx, &backend.CheckHealthRequest{})
	if err != nil || res.Status != backend.HealthStatusOk {
		t.Fatalf("health before dispose: %v %+v", err, res)
	}
	pool := grafana.StoreOf(ds)
	if pool == nil {
		t.Fatal("no pool after a health check")
	}
	ds.Dispose()
	if err := pool.Conn().Ping(ctx); err == nil {
		t.Error("the pool still answers after Dispose")
	}
	res, err = ds.CheckHealth(ctx, &backend.CheckHealthRequest{})
	if err != nil || res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "disposed") {
		t.Errorf("health after dispose: %v %+v", err, res)
	}
	ds.Dispose() // twice is harmless
}
