package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/leakline/leakline/pkg/pager"
)

// maxPageBytes bounds one webhook body the receiver accepts.
const maxPageBytes = 1 << 20

// ReceivedPage is one trigger page the receiver got: the incident (dedup
// key), whose and which rule's, the finding's window end (event time) and
// when it arrived (wall).
type ReceivedPage struct {
	DedupKey  string
	FindingID string
	RuleID    string
	ActorUID  string
	Kind      string
	WindowEnd time.Time
	Received  time.Time
}

// pageReceiver is the pager's generic webhook receiver for the load test:
// an HTTP server on a loopback port that checks each body's signature
// (pager.VerifySignature) and records the trigger pages (pager.WebhookBody).
type pageReceiver struct {
	secret []byte
	srv    *http.Server
	ln     net.Listener

	mu       sync.Mutex
	pages    []ReceivedPage
	bad      int
	resolved int
}

func newPageReceiver(secret []byte) (*pageReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loadtest: page receiver: %w", err)
	}
	r := &pageReceiver{secret: secret, ln: ln}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	return r, nil
}

// URL is where the pager posts.
func (r *pageReceiver) URL() string { return "http://" + r.ln.Addr().String() + "/hooks/leakline" }

// Serve serves until ctx ends.
func (r *pageReceiver) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.srv.Shutdown(sctx)
	}()
	if err := r.srv.Serve(r.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("loadtest: page receiver: %w", err)
	}
	return nil
}

// decodePage checks a webhook body's signature and decodes it.
func decodePage(secret, body []byte, signature string) (pager.WebhookBody, error) {
	var b pager.WebhookBody
	if len(body) > maxPageBytes {
		return b, fmt.Errorf("body of %d bytes exceeds %d", len(body), maxPageBytes)
	}
	if !pager.VerifySignature(secret, body, signature) {
		return b, errors.New("bad signature")
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return b, fmt.Errorf("decode page: %w", err)
	}
	if b.DedupKey == "" || (b.Action != string(pager.ActionTrigger) && b.Action != string(pager.ActionResolve)) {
		return b, fmt.Errorf("page without dedup key or with action %q", b.Action)
	}
	return b, nil
}

func (r *pageReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(req.Body, maxPageBytes+1))
	if err == nil {
		var b pager.WebhookBody
		if b, err = decodePage(r.secret, body, req.Header.Get(pager.HeaderSignature)); err == nil {
			r.record(b, now)
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	r.mu.Lock()
	r.bad++
	r.mu.Unlock()
	// 400 is final for the pager: the finding is dead-lettered, and the
	// run reports the bad page.
	http.Error(w, err.Error(), http.StatusBadRequest)
}

func (r *pageReceiver) record(b pager.WebhookBody, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b.Action == string(pager.ActionResolve) {
		r.resolved++
		return
	}
	if b.Kind == "shadow" {
		return
	}
	r.pages = append(r.pages, ReceivedPage{
		DedupKey: b.DedupKey, FindingID: b.Page.FindingID, RuleID: b.Page.RuleID, ActorUID: b.Page.ActorUID,
		Kind: b.Kind, WindowEnd: b.Page.WindowEnd, Received: at,
	})
}

// Pages returns a copy of the trigger pages so far, the number of distinct
// incidents among them and how many bodies were refused.
func (r *pageReceiver) Pages() (pages []ReceivedPage, incidents, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := map[string]bool{}
	for _, p := range r.pages {
		keys[p.DedupKey] = true
	}
	return append([]ReceivedPage(nil), r.pages...), len(keys), r.bad
}
