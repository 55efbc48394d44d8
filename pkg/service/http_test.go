package service

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/leakline/leakline/pkg/metrics"
)

func TestHandler(t *testing.T) {
	metrics.DeadLetters.WithLabelValues("normalizer", "schema").Inc()
	var readyErr error
	srv := httptest.NewServer(Handler(func(context.Context) error { return readyErr }))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, path string
		ready      error
		code       int
		contains   string
	}{
		{"liveness", "/healthz", errors.New("x"), 200, "ok"},
		{"ready", "/readyz", nil, 200, "ready"},
		{"not ready says why", "/readyz", errors.New("kafka unreachable"), 503, "kafka unreachable"},
		{"metrics", "/metrics", nil, 200, `leakline_deadletters_total{reason="schema",stage="normalizer"}`},
		{"go runtime metrics", "/metrics", nil, 200, "go_goroutines"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			readyErr = tc.ready
			code, body := get(tc.path)
			if code != tc.code || !strings.Contains(body, tc.contains) {
				t.Fatalf("GET %s = %d %q; want %d containing %q", tc.path, code, body, tc.code, tc.contains)
			}
		})
	}
}
