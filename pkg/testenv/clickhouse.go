package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/chserver"
	"github.com/leakline/leakline/pkg/chstore"
)

// clickHouseStartTimeout bounds starting a private server (it is usually
// ready in well under a second; a loaded machine may need more).
const clickHouseStartTimeout = 60 * time.Second

// ClickHouse starts a private ClickHouse server for the test and stops it
// (removing its data) when the test ends. If none can be started the test
// is skipped, or fails under CI=true (see Unavailable).
//
// Prefer one server per test package (StartClickHouseMain in TestMain, then
// ClickHouseStore per test); use this for tests that stop, pause or kill
// their server.
func ClickHouse(tb testing.TB) *chserver.Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clickHouseStartTimeout)
	defer cancel()
	srv, err := chserver.Start(ctx, chserver.Options{})
	if err != nil {
		Unavailable(tb, "ClickHouse", err)
		return nil
	}
	tb.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			tb.Errorf("stop ClickHouse: %v", err)
		}
	})
	return srv
}

// StartClickHouseMain starts one private ClickHouse server for a test
// package's TestMain and returns it with the func that stops it. Under
// TestMain there is no testing.TB to skip: on error, a TestMain should pass
// a nil server to its tests, which then call ClickHouseStore(t, nil) (or
// Unavailable) themselves:
//
//	var srv *chserver.Server
//
//	func TestMain(m *testing.M) {
//		s, stop, err := testenv.StartClickHouseMain()
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err) // tests will skip, or fail under CI
//		}
//		srv = s
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
//
// The returned stop func is never nil and may be called more than once.
func StartClickHouseMain() (*chserver.Server, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), clickHouseStartTimeout)
	defer cancel()
	srv, err := chserver.Start(ctx, chserver.Options{})
	if err != nil {
		return nil, func() {}, fmt.Errorf("testenv: start ClickHouse: %w", err)
	}
	return srv, func() { _ = srv.Stop() }, nil
}

// ClickHouseStore opens a store on a new, uniquely named database of srv,
// migrates it, and closes it when the test ends. A nil srv (TestMain could
// not start one) makes the test skip, or fail under CI=true.
func ClickHouseStore(tb testing.TB, srv *chserver.Server) *chstore.Store {
	tb.Helper()
	if srv == nil {
		Unavailable(tb, "ClickHouse", fmt.Errorf("no server (see TestMain's output)"))
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := chstore.Open(ctx, chstore.Config{
		Addr:        srv.Addr(),
		Database:    uniqueDatabase(tb.Name()),
		DialTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second,
	})
	if err != nil {
		tb.Fatalf("testenv: open ClickHouse store: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatalf("testenv: migrate ClickHouse store: %v", err)
	}
	return st
}

// uniqueDatabase is "t_<test name>_<random>", as a ClickHouse identifier.
func uniqueDatabase(testName string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(rnd[:]))
	return b.String()
}
