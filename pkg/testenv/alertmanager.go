package testenv

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/amserver"
)

// alertmanagerStartTimeout bounds starting a private Alertmanager (usually
// ready in well under a second).
const alertmanagerStartTimeout = 60 * time.Second

// Alertmanager starts a private Alertmanager with opt (opt.Config is
// required; amserver.Config writes one) and stops it when the test ends.
// If the binary is missing the test is skipped, or fails under CI=true (see
// Unavailable); an installed Alertmanager that does not start fails the
// test.
func Alertmanager(tb testing.TB, opt amserver.Options) *amserver.Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), alertmanagerStartTimeout)
	defer cancel()
	srv, err := amserver.Start(ctx, opt)
	if err != nil {
		if errors.Is(err, amserver.ErrNoBinary) {
			Unavailable(tb, "Alertmanager", err)
			return nil
		}
		tb.Fatalf("testenv: start Alertmanager: %v", err)
	}
	tb.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			tb.Errorf("stop Alertmanager: %v", err)
		}
	})
	return srv
}
