package ruledeploy

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/testenv"
)

func TestRecordInClickHouse(t *testing.T) {
	srv := testenv.ClickHouse(t)
	if srv == nil {
		return
	}
	st := testenv.ClickHouseStore(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	priv := newKey(t)
	for seq := uint64(1); seq <= 2; seq++ {
		m := signed(t, seq, priv)
		m.Time = m.Time.Add(time.Duration(seq) * time.Minute)
		if err := Sign(m, priv); err != nil {
			t.Fatal(err)
		}
		if err := Record(ctx, st, m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Recorded(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	// One version: the newest deploy of it wins under FINAL.
	if len(got) != 1 || got[0].Err != nil || got[0].Message.Seq != 2 {
		t.Fatalf("Recorded = %+v", got)
	}
	if err := Verify(got[0].Message, priv.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("stored deploy does not verify: %v", err)
	}
}
