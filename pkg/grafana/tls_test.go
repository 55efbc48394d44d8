package grafana_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"gopkg.in/yaml.v3"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/grafana"
	"github.com/leakline/leakline/pkg/testcert"
	"github.com/leakline/leakline/pkg/testenv"
)

// The password of the ClickHouse user of the TLS tests.
const (
	tlsUser     = "leakline_grafana"
	tlsPassword = "grafana-pw-5c1e-secret"
)

// tlsMaterial is the PEM text Grafana would hold in secureJsonData: the
// CA that signed the server's certificate, another CA, and a client
// certificate and key of the first CA.
type tlsMaterial struct {
	ca                              *testcert.CA
	caPEM, otherCAPEM               string
	clientCert, clientKey           string
	otherClientCert, otherClientKey string // of the other CA; the key does not match clientCert
	serverCertFile, serverKF        string
}

func newTLSMaterial(t *testing.T) tlsMaterial {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testcert.NewCA(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Server("clickhouse", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Client("grafana", "grafana")
	if err != nil {
		t.Fatal(err)
	}
	otherClient, err := other.Client("intruder", "intruder")
	if err != nil {
		t.Fatal(err)
	}
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return tlsMaterial{
		ca:    ca,
		caPEM: read(ca.CertFile), otherCAPEM: read(other.CertFile),
		clientCert: read(client.CertFile), clientKey: read(client.KeyFile),
		otherClientCert: read(otherClient.CertFile), otherClientKey: read(otherClient.KeyFile),
		serverCertFile: server.CertFile, serverKF: server.KeyFile,
	}
}

// secrets are the values no error or health message may show.
func (m tlsMaterial) secrets() []string {
	return []string{tlsPassword, m.clientKey, m.otherClientKey, "PRIVATE KEY"}
}

// tlsSettings are the settings Grafana would send: jsonData from extra
// over instanceSettings' defaults, secureJsonData from secure.
func tlsSettings(uid, addr, db string, extra map[string]any, secure map[string]string) backend.DataSourceInstanceSettings {
	s := instanceSettings(uid, addr, db, extra)
	s.DecryptedSecureJSONData = secure
	return s
}

// TestLoadSettingsTLS checks the TLS settings: what each switch builds,
// that certificate verification cannot be turned off, and that every
// problem is reported at once without a secret.
func TestLoadSettingsTLS(t *testing.T) {
	m := newTLSMaterial(t)
	load := func(jsonData string, secure map[string]string) (grafana.Settings, error) {
		return grafana.LoadSettings(backend.DataSourceInstanceSettings{JSONData: json.RawMessage(jsonData), DecryptedSecureJSONData: secure})
	}
	withCA := map[string]string{"password": tlsPassword, "tlsCACert": m.caPEM}
	mtls := map[string]string{"password": tlsPassword, "tlsCACert": m.caPEM, "tlsClientCert": m.clientCert, "tlsClientKey": m.clientKey}
	for _, tc := range []struct {
		name     string
		jsonData string
		secure   map[string]string
		wantErrs []string // every one must be in the error; none: loads
		check    func(t *testing.T, c *tls.Config)
	}{
		{name: "TLS off", jsonData: `{"address":"ch:9000"}`, secure: mtls, check: func(t *testing.T, c *tls.Config) {
			if c != nil {
				t.Error("a TLS configuration with TLS off")
			}
		}},
		{name: "system roots", jsonData: `{"address":"ch:9440","secure":true,"tlsSkipVerify":false}`, secure: withCA, check: func(t *testing.T, c *tls.Config) {
			// A CA left in secureJsonData is unused while its switch is off.
			if c == nil || c.RootCAs != nil || c.Certificates != nil || c.InsecureSkipVerify || c.MinVersion != tls.VersionTLS12 {
				t.Errorf("%+v", c)
			}
		}},
		{name: "CA and server name", jsonData: `{"address":"ch:9440","secure":true,"tlsAuthWithCACert":true,"serverName":" clickhouse.internal "}`, secure: withCA,
			check: func(t *testing.T, c *tls.Config) {
				if c == nil || c.RootCAs == nil || !c.RootCAs.Equal(m.ca.Pool()) || c.ServerName != "clickhouse.internal" || c.Certificates != nil {
					t.Errorf("%+v", c)
				}
			}},
		{name: "mutual TLS", jsonData: `{"address":"ch:9440","secure":true,"tlsAuthWithCACert":true,"tlsAuth":true}`, secure: mtls,
			check: func(t *testing.T, c *tls.Config) {
				if c == nil || c.RootCAs == nil || len(c.Certificates) != 1 || c.Certificates[0].Leaf == nil || c.Certificates[0].Leaf.Subject.CommonName != "grafana" {
					t.Errorf("%+v", c)
				}
			}},
		{name: "skip verify refused", jsonData: `{"address":"ch:9440","secure":true,"tlsSkipVerify":true}`,
			wantErrs: []string{"tlsSkipVerify", "without certificate verification is not supported"}},
		{name: "skip verify refused even with TLS off", jsonData: `{"address":"ch:9000","tlsSkipVerify":true}`,
			wantErrs: []string{"tlsSkipVerify"}},
		{name: "CA switch without a CA", jsonData: `{"address":"ch:9440","secure":true,"tlsAuthWithCACert":true}`, secure: map[string]string{"password": tlsPassword},
			wantErrs: []string{"secureJsonData.tlsCACert", "empty"}},
		{name: "CA that is not PEM", jsonData: `{"address":"ch:9440","secure":true,"tlsAuthWithCACert":true}`, secure: map[string]string{"tlsCACert": "not a certificate " + tlsPassword},
			wantErrs: []string{"secureJsonData.tlsCACert holds no PEM certificate"}},
		{name: "client certificate without its key", jsonData: `{"address":"ch:9440","secure":true,"tlsAuth":true}`, secure: map[string]string{"tlsClientCert": m.clientCert},
			wantErrs: []string{"tlsAuth is on but secureJsonData.tlsClientKey empty"}},
		{name: "neither client certificate nor key", jsonData: `{"address":"ch:9440","secure":true,"tlsAuth":true}`,
			wantErrs: []string{"secureJsonData.tlsClientCert, secureJsonData.tlsClientKey empty"}},
		{name: "key of another certificate", jsonData: `{"address":"ch:9440","secure":true,"tlsAuth":true}`, secure: map[string]string{"tlsClientCert": m.clientCert, "tlsClientKey": m.otherClientKey},
			wantErrs: []string{"tlsClientCert/tlsClientKey", "private key does not match public key"}},
		{name: "TLS switches with TLS off", jsonData: `{"address":"ch:9000","tlsAuthWithCACert":true,"tlsAuth":true,"serverName":"ch"}`, secure: mtls,
			wantErrs: []string{"jsonData.tlsAuthWithCACert, jsonData.tlsAuth, jsonData.serverName set but TLS is off", "jsonData.secure"}},
		{name: "certificates in jsonData", jsonData: `{"address":"ch:9440","secure":true,"tlsCACert":"x","tlsClientKey":"y"}`,
			wantErrs: []string{`"tlsCACert"`, `"tlsClientKey"`, "secureJsonData"}},
		{name: "wrong types", jsonData: `{"address":"ch:9440","secure":"yes","serverName":7}`,
			wantErrs: []string{"jsonData.secure", "jsonData.serverName"}},
		{name: "every problem at once", jsonData: `{"secure":true,"tlsSkipVerify":true,"tlsAuthWithCACert":true,"tlsAuth":true,"dialTimeout":"soon","maxOpenConns":-1,"password":"x"}`,
			secure:   map[string]string{"password": tlsPassword, "tlsCACert": "garbage", "tlsClientCert": m.clientCert, "tlsClientKey": m.otherClientKey},
			wantErrs: []string{"address", "tlsSkipVerify", "tlsCACert holds no PEM", "private key does not match", "invalid duration", "maxOpenConns is negative", `jsonData has "password"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := load(tc.jsonData, tc.secure)
			if len(tc.wantErrs) > 0 {
				if err == nil {
					t.Fatal("loaded")
				}
				t.Logf("refused: %v", err)
				if strings.Count(err.Error(), "leakline datasource settings:") != 1 {
					t.Errorf("error %q does not start with one prefix", err)
				}
				for _, w := range tc.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q", w)
					}
				}
				assertNoneOf(t, "the settings error", []string{err.Error()}, m.secrets())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s.TLSConfig())
		})
	}
}

// securedClickHouse starts a private ClickHouse (18.16 here) with a
// password user and its secure Native port on a certificate of m's CA, for
// localhost and 127.0.0.1, and a migrated database. With
// requireClientCert the secure port also demands a client certificate
// issued by m's CA (chserver.TLSFiles.ClientCAFile).
func securedClickHouse(t *testing.T, m tlsMaterial, requireClientCert bool) (*chserver.Server, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opt := chserver.Options{
		Users: []chserver.User{{Name: tlsUser, Password: tlsPassword}},
		TLS:   &chserver.TLSFiles{CertFile: m.serverCertFile, KeyFile: m.serverKF},
	}
	if requireClientCert {
		opt.TLS.ClientCAFile = m.ca.CertFile
	}
	s, err := chserver.Start(ctx, opt)
	if err != nil {
		if errors.Is(err, chserver.ErrNoBinary) {
			testenv.Unavailable(t, "ClickHouse", err)
			return nil, ""
		}
		t.Fatalf("start ClickHouse with a password user and TLS: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop ClickHouse: %v", err)
		}
	})
	if v, err := s.Version(ctx); err == nil {
		t.Logf("ClickHouse %s, secure Native port %s", v, s.SecureAddr())
	}
	st := testenv.ClickHouseStore(t, s)
	return s, st.Database()
}

// TestCheckHealthTLS checks the health check over real gRPC against a
// ClickHouse that serves TLS and wants a password: OK with the CA that
// signed its certificate (by IP, by server name, with a client certificate
// configured); an error that says why, naming the setting to fix and
// holding no secret, with an unknown CA, the system roots, a name not in
// the certificate, a wrong password, TLS at the plain port, plaintext at
// the secure port and certificate verification turned off.
func TestCheckHealthTLS(t *testing.T) {
	m := newTLSMaterial(t)
	s, db := securedClickHouse(t, m, false)
	plugin, _ := startPlugin(t)

	on := map[string]any{"username": tlsUser, "secure": true, "tlsAuthWithCACert": true}
	with := func(kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range on {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	right := map[string]string{"password": tlsPassword, "tlsCACert": m.caPEM}
	checkHealthCases(t, m, plugin.Client, "tls", db, []healthCase{
		{name: "right CA", addr: s.SecureAddr(), json: on, secure: right,
			status: backend.HealthStatusOk, want: []string{"ClickHouse ", s.SecureAddr(), db, "schema version", "over TLS"}},
		{name: "right CA, server name", addr: s.SecureAddr(), json: with("serverName", "localhost"), secure: right,
			status: backend.HealthStatusOk, want: []string{s.SecureAddr(), "over TLS"}},
		{name: "right CA, client certificate configured", addr: s.SecureAddr(), json: with("tlsAuth", true),
			secure: map[string]string{"password": tlsPassword, "tlsCACert": m.caPEM, "tlsClientCert": m.clientCert, "tlsClientKey": m.clientKey},
			status: backend.HealthStatusOk, want: []string{s.SecureAddr()}},
		{name: "unknown CA", addr: s.SecureAddr(), json: on, secure: map[string]string{"password": tlsPassword, "tlsCACert": m.otherCAPEM},
			status: backend.HealthStatusError, want: []string{"cannot connect to ClickHouse at " + s.SecureAddr(), "certificate signed by unknown authority", "tlsCACert"}},
		{name: "system roots", addr: s.SecureAddr(), json: with("tlsAuthWithCACert", false), secure: right,
			status: backend.HealthStatusError, want: []string{"certificate signed by unknown authority", "tlsCACert"}},
		{name: "name not in the certificate", addr: s.SecureAddr(), json: with("serverName", "ch.example"), secure: right,
			status: backend.HealthStatusError, want: []string{"ch.example", "serverName"}},
		{name: "wrong password over TLS", addr: s.SecureAddr(), json: on, secure: map[string]string{"password": "x" + tlsPassword, "tlsCACert": m.caPEM},
			status: backend.HealthStatusError, want: []string{"password"}},
		{name: "TLS at the plain port", addr: s.Addr(), json: on, secure: right,
			status: backend.HealthStatusError, want: []string{"cannot connect to ClickHouse at " + s.Addr(), "secure Native port"}},
		{name: "plaintext at the secure port", addr: s.SecureAddr(), json: map[string]any{"username": tlsUser}, secure: right,
			status: backend.HealthStatusError, want: []string{"cannot connect to ClickHouse at " + s.SecureAddr(), "turn TLS on"}},
		{name: "verification off", addr: s.SecureAddr(), json: with("tlsSkipVerify", true), secure: right,
			status: backend.HealthStatusError, want: []string{"tlsSkipVerify", "not supported"}},
	})
}

// healthCase is a health check of a datasource at addr with jsonData json
// and secureJsonData secure, and the status and message parts it must give.
type healthCase struct {
	name   string
	addr   string
	json   map[string]any
	secure map[string]string
	status backend.HealthStatus
	want   []string
}

// checkHealthCases runs each case as a datasource instance of its own over
// gRPC and checks its result; no message may hold one of m's secrets.
func checkHealthCases(t *testing.T, m tlsMaterial, client backend.CheckHealthHandler, prefix, db string, cases []healthCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			settings := tlsSettings(prefix+"-"+strings.ReplaceAll(tc.name, " ", "-"), tc.addr, db, tc.json, tc.secure)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			begin := time.Now()
			res, err := client.CheckHealth(ctx, &backend.CheckHealthRequest{PluginContext: pluginContext(settings, grafana.RoleAdmin)})
			if err != nil {
				t.Fatalf("CheckHealth: %v", err)
			}
			t.Logf("%v: %s", time.Since(begin).Round(time.Millisecond), res.Message)
			if res.Status != tc.status {
				t.Fatalf("status %v (%s), want %v", res.Status, res.Message, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Message, w) {
					t.Errorf("message lacks %q", w)
				}
			}
			assertNoneOf(t, "the health message", []string{res.Message, string(res.JSONDetails)}, m.secrets())
		})
	}
}

// TestCheckHealthMutualTLS checks the health check over gRPC against a
// ClickHouse whose secure port demands a client certificate of its CA: OK
// with the client certificate; an error that names the client certificate
// setting without one, or with a certificate of another CA.
func TestCheckHealthMutualTLS(t *testing.T) {
	m := newTLSMaterial(t)
	s, db := securedClickHouse(t, m, true)
	plugin, _ := startPlugin(t)
	on := map[string]any{"username": tlsUser, "secure": true, "tlsAuthWithCACert": true, "tlsAuth": true}
	withClient := func(cert, key string) map[string]string {
		return map[string]string{"password": tlsPassword, "tlsCACert": m.caPEM, "tlsClientCert": cert, "tlsClientKey": key}
	}
	checkHealthCases(t, m, plugin.Client, "mtls", db, []healthCase{
		{name: "client certificate", addr: s.SecureAddr(), json: on, secure: withClient(m.clientCert, m.clientKey),
			status: backend.HealthStatusOk, want: []string{s.SecureAddr(), "over TLS", db}},
		{name: "no client certificate", addr: s.SecureAddr(), json: map[string]any{"username": tlsUser, "secure": true, "tlsAuthWithCACert": true},
			secure: withClient(m.clientCert, m.clientKey),
			status: backend.HealthStatusError, want: []string{"cannot connect to ClickHouse at " + s.SecureAddr(), "tlsAuth"}},
		{name: "client certificate of another CA", addr: s.SecureAddr(), json: on, secure: withClient(m.otherClientCert, m.otherClientKey),
			status: backend.HealthStatusError, want: []string{"cannot connect to ClickHouse at " + s.SecureAddr(), "tlsClientCert"}},
	})
}

// FuzzLoadSettings feeds arbitrary jsonData and CA text to the settings
// parser: it must not panic, no error may show a secret, and settings it
// accepts are usable: an address, positive limits, TLS exactly when
// secure is on, always verifying certificates.
func FuzzLoadSettings(f *testing.F) {
	for _, seed := range []string{
		`{"address":"ch:9000"}`,
		`{"address":"ch:9440","secure":true,"tlsAuthWithCACert":true,"tlsAuth":true,"serverName":"ch"}`,
		`{"address":"ch:9440","secure":true,"tlsSkipVerify":true}`,
		`{"secure":"yes","dialTimeout":"soon","maxOpenConns":-1,"tlsClientKey":"k"}`,
		`{"address":" ","queryTimeout":1e308,"streamInterval":null}`,
		`[]`, ``, `{`,
	} {
		f.Add([]byte(seed), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	}
	const password, key = "fuzz-pw-3b7d-secret", "-----BEGIN PRIVATE KEY-----\nfuzz-key-material\n-----END PRIVATE KEY-----\n"
	f.Fuzz(func(t *testing.T, jsonData []byte, ca string) {
		s, err := grafana.LoadSettings(backend.DataSourceInstanceSettings{JSONData: jsonData, DecryptedSecureJSONData: map[string]string{
			"password": password, "tlsCACert": ca, "tlsClientCert": ca, "tlsClientKey": key,
		}})
		if err != nil {
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "fuzz-key-material") {
				t.Fatalf("the error shows a secret: %v", err)
			}
			return
		}
		c := s.TLSConfig()
		switch {
		case s.Address == "" || s.Database == "" || s.MaxOpenConns <= 0 || s.DialTimeout <= 0 || s.QueryTimeout <= 0 ||
			time.Duration(s.StreamInterval) < grafana.MinStreamInterval:
			t.Fatalf("accepted unusable settings %+v", s)
		case s.Secure != (c != nil):
			t.Fatalf("secure %v, TLS configuration %v", s.Secure, c != nil)
		case c != nil && (c.InsecureSkipVerify || c.MinVersion < tls.VersionTLS12):
			t.Fatalf("TLS configuration %+v", c)
		}
	})
}

// TestProvisionedSettings loads the Leakline datasource of the provisioning
// file as Grafana would hand it to the plugin: as written (TLS off), and
// with its commented TLS lines switched on, the $__file{} secrets replaced
// by the PEM text Grafana would read from those files.
func TestProvisionedSettings(t *testing.T) {
	m := newTLSMaterial(t)
	text, err := os.ReadFile(filepath.Join(dashboardsDir, "provisioning", "datasources", "leakline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	commented := regexp.MustCompile(`(?m)^(\s*)# ((tlsAuthWithCACert|tlsAuth|serverName|tlsCACert|tlsClientCert|tlsClientKey): )`)
	withTLS := commented.ReplaceAll(bytes.Replace(text, []byte("secure: false"), []byte("secure: true"), 1), []byte("$1$2"))
	files := map[string]string{"tlsCACert": m.caPEM, "tlsClientCert": m.clientCert, "tlsClientKey": m.clientKey, "password": tlsPassword}
	for _, tc := range []struct {
		name   string
		text   []byte
		secure bool
	}{
		{"as written", text, false},
		{"TLS lines on", withTLS, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var file struct {
				Datasources []struct {
					Type           string            `yaml:"type"`
					JSONData       map[string]any    `yaml:"jsonData"`
					SecureJSONData map[string]string `yaml:"secureJsonData"`
				} `yaml:"datasources"`
			}
			if err := yaml.Unmarshal(tc.text, &file); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, ds := range file.Datasources {
				if ds.Type != grafana.PluginID {
					continue
				}
				n++
				jsonData, err := json.Marshal(ds.JSONData)
				if err != nil {
					t.Fatal(err)
				}
				secure := map[string]string{}
				for k, v := range ds.SecureJSONData {
					if !strings.HasPrefix(v, "$__file{") {
						t.Errorf("secureJsonData.%s is not read from a file", k)
					}
					secure[k] = files[k]
				}
				s, err := grafana.LoadSettings(backend.DataSourceInstanceSettings{JSONData: jsonData, DecryptedSecureJSONData: secure})
				if err != nil {
					t.Fatal(err)
				}
				c := s.TLSConfig()
				if s.Secure != tc.secure || (c != nil) != tc.secure || tc.secure && (c.RootCAs == nil || len(c.Certificates) != 1 || c.ServerName == "") {
					t.Errorf("secure %v, TLS %+v", s.Secure, c)
				}
			}
			if n != 1 {
				t.Fatalf("%d Leakline datasources in the provisioning file", n)
			}
		})
	}
}
