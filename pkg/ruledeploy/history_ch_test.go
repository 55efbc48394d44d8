package ruledeploy

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/testenv"
)

// TestRecordInClickHouse: every deployment keeps its row, a rollback (an
// old pack version under a new seq) included, in seq order; recording the
// same deployment again does not add one.
func TestRecordInClickHouse(t *testing.T) {
	srv := testenv.ClickHouse(t)
	if srv == nil {
		return
	}
	st := testenv.ClickHouseStore(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	priv := newKey(t)
	first := signed(t, 1, priv)
	newer := testFiles()
	newer["pack.yaml"] = []byte(strings.Replace(packYAML, "1.0.0", "1.1.0", 1))
	second, _, err := NewMessage(newer, 2, "bob", "second", first.Time.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	rollback, _, err := NewMessage(first.FileBytes(), 3, "carol", "rollback to seq 1", first.Time.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Message{second, rollback} {
		if err := Sign(m, priv); err != nil {
			t.Fatal(err)
		}
	}
	if first.Version != rollback.Version || first.Version == second.Version {
		t.Fatalf("versions %s %s %s: want the rollback to redeploy the first", first.Version, second.Version, rollback.Version)
	}
	// Out of order, and the rollback twice (a retried write).
	for _, m := range []*Message{rollback, first, second, rollback} {
		if err := Record(ctx, st, m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Recorded(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	want := []*Message{first, second, rollback}
	if len(got) != len(want) {
		t.Fatalf("Recorded: %d deployments, want %d: %+v", len(got), len(want), got)
	}
	for i, e := range got {
		if e.Err != nil {
			t.Fatalf("deployment %d: %v", i, e.Err)
		}
		m := e.Message
		if m.Seq != want[i].Seq || m.Version != want[i].Version || m.Author != want[i].Author || m.Checksum != want[i].Checksum {
			t.Errorf("deployment %d: seq %d version %s author %s; want seq %d version %s author %s", i, m.Seq, m.Version, m.Author,
				want[i].Seq, want[i].Version, want[i].Author)
		}
		if err := Verify(m, priv.Public().(ed25519.PublicKey)); err != nil {
			t.Errorf("stored deploy %d does not verify: %v", m.Seq, err)
		}
	}
}
