package grafana_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/leakline/leakline/pkg/grafana"
)

func TestInvestigationURL(t *testing.T) {
	from := time.UnixMilli(1793613600000)
	to := time.UnixMilli(1793700000000)
	for _, tc := range []struct {
		name, base, actor string
		from, to          time.Time
		want              string
	}{
		{"plain", "https://grafana.example.com", "u-1007", from, to,
			"https://grafana.example.com/d/leakline-investigation/investigation?var-actor=u-1007&from=1793613600000&to=1793700000000"},
		{"trailing slash and sub path", "https://example.com/grafana/", "u-1007", from, to,
			"https://example.com/grafana/d/leakline-investigation/investigation?var-actor=u-1007&from=1793613600000&to=1793700000000"},
		{"escaped actor", "http://g:3000", "a b&c=d/é", from, to,
			"http://g:3000/d/leakline-investigation/investigation?var-actor=a+b%26c%3Dd%2F%C3%A9&from=1793613600000&to=1793700000000"},
		{"no range", "http://g", "u-1", time.Time{}, time.Time{},
			"http://g/d/leakline-investigation/investigation?var-actor=u-1"},
		{"relative base", "", "u-1", from, time.Time{},
			"/d/leakline-investigation/investigation?var-actor=u-1&from=1793613600000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := grafana.InvestigationURL(tc.base, tc.actor, tc.from, tc.to); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestLoadSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		jsonData string
		secure   map[string]string
		wantErr  string
		check    func(t *testing.T, s grafana.Settings)
	}{
		{name: "defaults", jsonData: `{"address":"ch:9000"}`, secure: map[string]string{"password": "pw"}, check: func(t *testing.T, s grafana.Settings) {
			if s.Database != "leakline" || time.Duration(s.DialTimeout) != grafana.DefaultDialTimeout ||
				time.Duration(s.QueryTimeout) != grafana.DefaultQueryTimeout || s.MaxOpenConns != grafana.DefaultMaxOpenConns ||
				time.Duration(s.StreamInterval) != grafana.DefaultStreamInterval || s.Password != "pw" {
				t.Errorf("%+v", s)
			}
		}},
		{name: "all set", jsonData: `{"address":" ch:9000 ","database":"dlp","username":"grafana","dialTimeout":"3s","queryTimeout":45,"maxOpenConns":8,"streamInterval":"10ms"}`,
			check: func(t *testing.T, s grafana.Settings) {
				if s.Address != "ch:9000" || s.Database != "dlp" || s.Username != "grafana" || time.Duration(s.DialTimeout) != 3*time.Second ||
					time.Duration(s.QueryTimeout) != 45*time.Second || s.MaxOpenConns != 8 || time.Duration(s.StreamInterval) != grafana.MinStreamInterval {
					t.Errorf("%+v", s)
				}
			}},
		{name: "no address", jsonData: `{"database":"x"}`, wantErr: "address"},
		{name: "empty jsonData", jsonData: ``, wantErr: "address"},
		{name: "password in jsonData", jsonData: `{"address":"ch:9000","password":"pw"}`, wantErr: "secureJsonData"},
		{name: "bad duration", jsonData: `{"address":"ch:9000","dialTimeout":"soon"}`, wantErr: "invalid duration"},
		{name: "negative duration", jsonData: `{"address":"ch:9000","queryTimeout":"-1s"}`, wantErr: "negative"},
		{name: "negative conns", jsonData: `{"address":"ch:9000","maxOpenConns":-1}`, wantErr: "negative"},
		{name: "not an object", jsonData: `[1]`, wantErr: "not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := grafana.LoadSettings(backend.DataSourceInstanceSettings{JSONData: json.RawMessage(tc.jsonData), DecryptedSecureJSONData: tc.secure})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), `"pw"`) {
					t.Error("the error shows the password")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		name      string
		queryType string // DataQuery.QueryType
		json      string
		wantErr   string
		check     func(t *testing.T, q grafana.Query)
	}{
		{name: "type from DataQuery", queryType: "findings", json: `{"refId":"A","datasource":{"uid":"leakline"},"intervalMs":1000}`, check: func(t *testing.T, q grafana.Query) {
			if q.QueryType != grafana.QueryFindings {
				t.Errorf("%+v", q)
			}
		}},
		{name: "lists cleaned", json: `{"queryType":"findings","rules":[" a ","","a","b"],"actor":"u-1","actors":["u-2","u-1"]}`, check: func(t *testing.T, q grafana.Query) {
			if strings.Join(q.Rules, ",") != "a,b" || strings.Join(q.Actors, ",") != "u-2,u-1" {
				t.Errorf("rules %q actors %q", q.Rules, q.Actors)
			}
		}},
		{name: "all means no filter", json: `{"queryType":"findings","channels":["email","$__all"]}`, check: func(t *testing.T, q grafana.Query) {
			if q.Channels != nil {
				t.Errorf("channels %q", q.Channels)
			}
		}},
		{name: "no type", json: `{}`, wantErr: "unknown queryType"},
		{name: "free sql refused", json: `{"queryType":"sql","rawSql":"SELECT * FROM system.query_log"}`, wantErr: "unknown queryType"},
		{name: "bad json", json: `{"queryType":`, wantErr: "invalid query JSON"},
		{name: "bad group", json: `{"queryType":"findings_over_time","groupBy":"actor"}`, wantErr: "groupBy"},
		{name: "good group", json: `{"queryType":"findings_over_time","groupBy":"pack_version"}`},
		{name: "timeline needs one actor", json: `{"queryType":"user_timeline","actors":["a","b"]}`, wantErr: "exactly one actor"},
		{name: "bad view", json: `{"queryType":"pipeline_health","view":"all"}`, wantErr: "view"},
		{name: "bad lookup", json: `{"queryType":"lookup","lookup":"emails"}`, wantErr: "lookup"},
		{name: "negative limit", json: `{"queryType":"findings","limit":-1}`, wantErr: "limit"},
		{name: "negative half-life", json: `{"queryType":"top_users","halfLifeHours":-2}`, wantErr: "halfLifeHours"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := grafana.ParseQuery(backend.DataQuery{QueryType: tc.queryType, JSON: json.RawMessage(tc.json)})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, q)
			}
		})
	}
}

func TestCanReveal(t *testing.T) {
	for _, tc := range []struct {
		user *backend.User
		want bool
	}{
		{nil, false},
		{&backend.User{Role: "Viewer"}, false},
		{&backend.User{Role: ""}, false},
		{&backend.User{Role: "None"}, false},
		{&backend.User{Role: "Editor"}, true},
		{&backend.User{Role: "Admin"}, true},
		{&backend.User{Role: "admin"}, true},
	} {
		if got := grafana.CanReveal(tc.user); got != tc.want {
			t.Errorf("CanReveal(%+v) = %v, want %v", tc.user, got, tc.want)
		}
	}
}
