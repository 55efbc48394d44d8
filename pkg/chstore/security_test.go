package chstore_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/testcert"
	"github.com/leakline/leakline/pkg/testenv"
)

const (
	sinkUser     = "leakline_sink"
	sinkPassword = "sink-pw-0a93-secret"
)

// securedServer starts a private ClickHouse with a password user and the
// secure Native port (tcp_port_secure) on a certificate of a test CA.
func securedServer(t *testing.T) (*chserver.Server, *testcert.CA) {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Server("clickhouse", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := chserver.Start(ctx, chserver.Options{
		Users: []chserver.User{{Name: sinkUser, Password: sinkPassword}},
		TLS:   &chserver.TLSFiles{CertFile: pair.CertFile, KeyFile: pair.KeyFile},
	})
	if err != nil {
		if errors.Is(err, chserver.ErrNoBinary) {
			testenv.Unavailable(t, "ClickHouse", err)
			return nil, nil
		}
		t.Fatalf("start ClickHouse with a password user and TLS: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	if v, err := s.Version(ctx); err == nil {
		t.Logf("ClickHouse %s with tcp_port_secure", v)
	}
	return s, ca
}

// TestOpenAuthenticatesAndUsesTLS runs against a real private ClickHouse
// (18.16 here): the right password opens, migrates and writes; a wrong
// password, an unknown user, a CA that did not sign the server's certificate
// and a plaintext client at the secure port are refused with errors that
// say why and never hold the password; TLS with the right CA works, by IP
// and by a server name.
func TestOpenAuthenticatesAndUsesTLS(t *testing.T) {
	s, ca := securedServer(t)
	other, err := testcert.NewCA(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  chstore.Config
		want string // substring of the error; empty: opens
	}{
		{name: "right password", cfg: chstore.Config{Addr: s.Addr(), User: sinkUser, Password: sinkPassword}},
		{name: "wrong password", cfg: chstore.Config{Addr: s.Addr(), User: sinkUser, Password: "x" + sinkPassword}, want: "password"},
		{name: "no password", cfg: chstore.Config{Addr: s.Addr(), User: sinkUser}, want: "password"},
		{name: "unknown user", cfg: chstore.Config{Addr: s.Addr(), User: "nobody", Password: sinkPassword}, want: "nobody"},
		{name: "TLS with the CA", cfg: chstore.Config{Addr: s.SecureAddr(), User: sinkUser, Password: sinkPassword, TLS: &tls.Config{RootCAs: ca.Pool()}}},
		{name: "TLS with a server name", cfg: chstore.Config{Addr: s.SecureAddr(), User: sinkUser, Password: sinkPassword, TLS: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}},
		{name: "TLS, wrong password", cfg: chstore.Config{Addr: s.SecureAddr(), User: sinkUser, Password: "x" + sinkPassword, TLS: &tls.Config{RootCAs: ca.Pool()}}, want: "password"},
		{name: "TLS, unknown CA", cfg: chstore.Config{Addr: s.SecureAddr(), User: sinkUser, Password: sinkPassword, TLS: &tls.Config{RootCAs: other.Pool()}}, want: "certificate signed by unknown authority"},
		{name: "TLS, name not in the certificate", cfg: chstore.Config{Addr: s.SecureAddr(), User: sinkUser, Password: sinkPassword, TLS: &tls.Config{RootCAs: ca.Pool(), ServerName: "ch.example"}}, want: "ch.example"},
		{name: "TLS without verification refused", cfg: chstore.Config{Addr: s.SecureAddr(), TLS: &tls.Config{InsecureSkipVerify: true}}, want: "without certificate verification"},
		{name: "plaintext client at the secure port", cfg: chstore.Config{Addr: s.SecureAddr(), User: sinkUser, Password: sinkPassword, DialTimeout: 3 * time.Second}, want: "connect to ClickHouse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tc.cfg.Database = "sec_test"
			st, err := chstore.Open(ctx, tc.cfg)
			if tc.want != "" {
				if err == nil {
					st.Close()
					t.Fatal("opened")
				}
				t.Logf("refused: %v", err)
				if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
					t.Errorf("error %q does not say %q", err, tc.want)
				}
				if strings.Contains(err.Error(), sinkPassword) {
					t.Errorf("error holds the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer st.Close()
			if err := st.Migrate(ctx); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			// currentUser() is newer than 18.16; the running query's row
			// in system.processes names its user on every release.
			var user string
			if err := st.Conn().QueryRow(ctx, "SELECT user FROM system.processes WHERE query LIKE '%whoami_marker%' LIMIT 1").Scan(&user); err != nil {
				t.Fatal(err)
			}
			if user != sinkUser {
				t.Errorf("connected as %q", user)
			}
			if err := st.Conn().Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}
