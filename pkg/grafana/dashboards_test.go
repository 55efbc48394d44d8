package grafana_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/leakline/leakline/pkg/grafana"
)

// dashboardsDir holds the provisioned dashboards.
var dashboardsDir = filepath.Join("..", "..", "dashboards")

// dashboard is the part of a dashboard JSON the tests read.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Time          struct{ From, To string }
	Templating    struct{ List []variable }
	Panels        []panel `json:"panels"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *dsRef          `json:"datasource"`
	Query      json.RawMessage `json:"query"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int                          `json:"id"`
	Type       string                       `json:"type"`
	Title      string                       `json:"title"`
	Datasource *dsRef                       `json:"datasource"`
	Targets    []map[string]json.RawMessage `json:"targets"`
	Panels     []panel                      `json:"panels"` // of a row
	GridPos    *struct{ X, Y, W, H int }    `json:"gridPos"`
}

const (
	promMetricLag        = "leakline_consumer_lag_records"
	promMetricConsumed   = "leakline_messages_consumed_total"
	promMetricDeadLetter = "leakline_deadletters_total"
	promMetricSinkInsert = "leakline_sink_insert_seconds"
)

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s: %v", dashboardsDir, err)
	}
	out := map[string]dashboard{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out[filepath.Base(file)] = d
	}
	return out
}

// flatPanels lists the panels, those inside rows included.
func flatPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatPanels(p.Panels)...)
	}
	return out
}

// relTime resolves Grafana's "now", "now-6h", "now-7d", "now-30m".
func relTime(t *testing.T, s string, now time.Time) time.Time {
	t.Helper()
	if s == "now" {
		return now
	}
	m := regexp.MustCompile(`^now-(\d+)([mhdw])$`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("unsupported time %q", s)
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
	return now.Add(-time.Duration(n) * unit)
}

// interpolate replaces $name and ${name} in a target's JSON as Grafana's
// frontend does before a query reaches the backend.
func interpolate(raw []byte, vars map[string]string) []byte {
	s := string(raw)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "${"+k+"}", v)
		s = strings.ReplaceAll(s, "$"+k, v)
	}
	return []byte(s)
}

// TestDashboardFiles checks the dashboards' structure without servers.
func TestDashboardFiles(t *testing.T) {
	ds := loadDashboards(t)
	wantUIDs := map[string]string{
		"overview.json":      "leakline-overview",
		"investigation.json": grafana.InvestigationUID,
		"rule-health.json":   "leakline-rule-health",
		"pipeline.json":      "leakline-pipeline",
	}
	for file, uid := range wantUIDs {
		t.Run(file, func(t *testing.T) {
			d, ok := ds[file]
			if !ok {
				t.Fatalf("%s missing", file)
			}
			if d.UID != uid || d.SchemaVersion < 39 || d.Title == "" {
				t.Errorf("uid %q schemaVersion %d title %q; want uid %q, schemaVersion ≥ 39", d.UID, d.SchemaVersion, d.Title, uid)
			}
			ids := map[int]bool{}
			for _, p := range flatPanels(d.Panels) {
				if ids[p.ID] {
					t.Errorf("panel id %d twice", p.ID)
				}
				ids[p.ID] = true
				if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
					t.Errorf("panel %q has no gridPos", p.Title)
				}
				refs := []*dsRef{p.Datasource}
				for _, tg := range p.Targets {
					var r *dsRef
					_ = json.Unmarshal(tg["datasource"], &r)
					refs = append(refs, r)
				}
				for _, r := range refs {
					switch {
					case r == nil:
					case r.UID == "leakline" && r.Type == grafana.PluginID:
					case r.UID == "prometheus" && r.Type == "prometheus":
					default:
						t.Errorf("panel %q: datasource %+v is neither the plugin (uid leakline) nor Prometheus", p.Title, *r)
					}
				}
			}
		})
	}
	if len(ds) != len(wantUIDs) {
		t.Errorf("%d dashboards, want %d", len(ds), len(wantUIDs))
	}
	inv := ds["investigation.json"]
	if len(inv.Templating.List) != 1 || inv.Templating.List[0].Name != "actor" {
		t.Errorf("investigation variables %+v, want one named actor", inv.Templating.List)
	}
	// The Pipeline dashboard charts the four service metrics.
	b, _ := json.Marshal(ds["pipeline.json"].Panels)
	for _, m := range []string{promMetricLag, promMetricConsumed, promMetricDeadLetter, promMetricSinkInsert} {
		if !strings.Contains(string(b), m) {
			t.Errorf("pipeline dashboard lacks %s", m)
		}
	}
}

// testDashboards executes every target of every panel whose datasource is
// the plugin, as a Viewer over the dashboard's default time range, after
// resolving its variables through the plugin; each must return a
// non-empty frame with data.
func testDashboards(t *testing.T, f *demoFixture, collect func(data.Frames)) {
	now := time.Now()
	executed := 0
	for file, d := range loadDashboards(t) {
		tr := backend.TimeRange{From: relTime(t, d.Time.From, now), To: relTime(t, d.Time.To, now)}
		vars := map[string]string{}
		for _, v := range d.Templating.List {
			if v.Type != "query" || v.Datasource == nil || v.Datasource.UID != "leakline" {
				continue
			}
			r := f.query(t, grafana.RoleViewer, backend.DataQuery{RefID: "var", JSON: v.Query, TimeRange: tr})
			if r.Error != nil || len(r.Frames) == 0 {
				t.Fatalf("%s: variable %s: %v", file, v.Name, r.Error)
			}
			collect(r.Frames)
			var values []string
			fl := r.Frames[0].Fields[0]
			for i := 0; i < fl.Len(); i++ {
				values = append(values, fl.At(i).(string))
			}
			if !slices.Contains(values, f.day.Insider) {
				t.Fatalf("%s: variable %s offers %q, not the insider", file, v.Name, values)
			}
			vars[v.Name] = f.day.Insider
		}
		for _, p := range flatPanels(d.Panels) {
			for _, tg := range p.Targets {
				ref := p.Datasource
				var tref *dsRef
				if json.Unmarshal(tg["datasource"], &tref) == nil && tref != nil {
					ref = tref
				}
				if ref == nil || ref.UID != "leakline" {
					continue
				}
				name := fmt.Sprintf("%s/%s", strings.TrimSuffix(file, ".json"), p.Title)
				t.Run(name, func(t *testing.T) {
					raw, _ := json.Marshal(tg)
					var refID, queryType string
					_ = json.Unmarshal(tg["refId"], &refID)
					_ = json.Unmarshal(tg["queryType"], &queryType)
					raw = interpolate(raw, vars)
					if strings.Contains(string(raw), "$") {
						t.Fatalf("unresolved variable in %s", raw)
					}
					q := backend.DataQuery{RefID: refID, QueryType: queryType, JSON: raw, TimeRange: tr,
						MaxDataPoints: 1000, Interval: tr.To.Sub(tr.From) / 1000}
					r := f.query(t, grafana.RoleViewer, q)
					if r.Error != nil {
						t.Fatalf("error: %v", r.Error)
					}
					collect(r.Frames)
					nonEmpty, numbers, sum := false, false, 0.0
					for _, fr := range r.Frames {
						if fr.Rows() > 0 {
							nonEmpty = true
						}
						for _, fl := range fr.Fields {
							if fl.Type() == data.FieldTypeFloat64 {
								numbers = true
							}
						}
						sum += sumFloats(fr)
					}
					if !nonEmpty {
						t.Fatal("no frame with rows")
					}
					if numbers && sum <= 0 {
						t.Errorf("numeric frames are all zero")
					}
				})
				executed++
			}
		}
	}
	if executed < 15 {
		t.Errorf("only %d dashboard targets executed", executed)
	}
	t.Logf("executed %d dashboard targets through the plugin", executed)
}
