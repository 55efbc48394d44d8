package ruledeploy

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/testenv"
)

const packYAML = `version: "1.0.0"
description: test pack
lists:
  personal: [gmail.com]
`

const rulesYAML = `rules:
  - id: t.many_reads
    title: Many reads
    description: Many CRM reads.
    severity: high
    match: kind == "crm_access"
    window: {kind: count, over: 1h, threshold: 3}
`

func testFiles() map[string][]byte {
	return map[string][]byte{"pack.yaml": []byte(packYAML), "crm.yaml": []byte(rulesYAML)}
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func signed(t testing.TB, seq uint64, priv ed25519.PrivateKey) *Message {
	t.Helper()
	m, _, err := NewMessage(testFiles(), seq, "alice", "first", time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := Sign(m, priv); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSignVerify(t *testing.T) {
	priv, other := newKey(t), newKey(t)
	pub := priv.Public().(ed25519.PublicKey)
	for _, c := range []struct {
		name   string
		mutate func(*Message)
		want   error
	}{
		{"valid", func(*Message) {}, nil},
		{"unsigned", func(m *Message) { m.Signature, m.KeyID = "", "" }, ErrUnsigned},
		{"no key id", func(m *Message) { m.KeyID = "" }, ErrUnsigned},
		{"wrong key", func(m *Message) { _ = Sign(m, other) }, ErrWrongKey},
		{"tampered file", func(m *Message) { m.Files["crm.yaml"] += "\n# x\n" }, ErrTampered},
		{"tampered seq", func(m *Message) { m.Seq++ }, ErrTampered},
		{"tampered author", func(m *Message) { m.Author = "mallory" }, ErrTampered},
		{"tampered time", func(m *Message) { m.Time = m.Time.Add(time.Nanosecond) }, ErrTampered},
		{"added file", func(m *Message) { m.Files["x.yaml"] = "rules: []\n" }, ErrTampered},
		{"bad signature", func(m *Message) { m.Signature = "!!" }, ErrTampered},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := signed(t, 1, priv)
			c.mutate(m)
			// Through JSON, as detectors receive it.
			b, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			m2, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			err = Verify(m2, pub)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}
}

func TestMessagePack(t *testing.T) {
	m := signed(t, 1, newKey(t))
	p, err := m.Pack()
	if err != nil || p.Version != "1.0.0" || len(p.Rules) != 1 {
		t.Fatalf("Pack = %v, %v", p, err)
	}
	m.Checksum = strings.Repeat("0", 64)
	if _, err := m.Pack(); !errors.Is(err, ErrChecksum) {
		t.Fatalf("wrong checksum: %v", err)
	}
	m.Files["crm.yaml"] = "rules: [{id: x}]"
	if _, err := m.Pack(); err == nil || errors.Is(err, ErrChecksum) {
		t.Fatalf("invalid pack: %v", err)
	}
	if _, err := Decode([]byte(`{"version":"1","bogus":1}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.key")
	priv := newKey(t)
	if err := WriteKeyPair(path, priv); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(path, priv); err == nil {
		t.Fatal("overwrote an existing key")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v %v", st.Mode(), err)
	}
	p2, err := LoadPrivateKey(path)
	if err != nil || !p2.Equal(priv) {
		t.Fatalf("LoadPrivateKey: %v", err)
	}
	pub, err := LoadPublicKey(path + ".pub")
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatalf("LoadPublicKey: %v", err)
	}
	if _, err := LoadPublicKey(path); err == nil {
		t.Fatal("private key read as public key")
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file")
	}
}

func TestDiff(t *testing.T) {
	oldM := signed(t, 1, newKey(t))
	old, _ := oldM.Pack()
	files := testFiles()
	files["pack.yaml"] = []byte(strings.Replace(packYAML, "1.0.0", "1.1.0", 1))
	files["crm.yaml"] = []byte(strings.Replace(rulesYAML, "threshold: 3", "threshold: 5", 1) +
		strings.ReplaceAll(strings.Replace(rulesYAML, "rules:\n", "", 1), "many_reads", "other"))
	m, cand, err := NewMessage(files, 2, "bob", "x", time.Now())
	if err != nil || m == nil {
		t.Fatal(err)
	}
	d := Diff(old, cand)
	if len(d.Added) != 1 || d.Added[0] != "t.other" || len(d.Removed) != 0 || len(d.Modified) != 1 {
		t.Fatalf("diff %+v", d)
	}
	rd := d.Modified[0]
	if !rd.Restart || len(rd.Changes) != 2 || rd.Changes[0].Field != "version" || rd.Changes[1] != (Change{"window.threshold", "3", "5"}) {
		t.Fatalf("modified %+v", rd)
	}
	if len(d.Pack) != 1 || d.Pack[0].Field != "version" {
		t.Fatalf("pack changes %+v", d.Pack)
	}
	if back := Diff(cand, old); len(back.Removed) != 1 || back.Removed[0] != "t.other" {
		t.Fatalf("reverse diff %+v", back)
	}
	if !Diff(old, old).Empty() {
		t.Fatal("a pack differs from itself")
	}
}

func TestPublishHistoryLatest(t *testing.T) {
	b := testenv.Kafka(t, nil)
	if b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := kafkaio.Config{Brokers: b.Addrs()}
	if _, err := Latest(ctx, cfg, DefaultTopic); !errors.Is(err, ErrNoPack) {
		t.Fatalf("Latest on a missing topic: %v", err)
	}
	priv := newKey(t)
	unsigned, _, _ := NewMessage(testFiles(), 1, "a", "m", time.Now())
	if err := Publish(ctx, cfg, DefaultTopic, unsigned); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("published unsigned: %v", err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if err := Publish(ctx, cfg, DefaultTopic, signed(t, seq, priv)); err != nil {
			t.Fatal(err)
		}
	}
	h, err := History(ctx, cfg, DefaultTopic)
	if err != nil || len(h) != 3 {
		t.Fatalf("History = %d entries, %v", len(h), err)
	}
	for i, e := range h {
		if e.Err != nil || e.Message.Seq != uint64(i+1) || Verify(e.Message, priv.Public().(ed25519.PublicKey)) != nil {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	l, err := Latest(ctx, cfg, DefaultTopic)
	if err != nil || l.Seq != 3 {
		t.Fatalf("Latest = %+v, %v", l, err)
	}
	f, err := Follow(cfg, DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 1; i <= 3; i++ {
		e, err := f.Next(ctx)
		if err != nil || e.Message.Seq != uint64(i) {
			t.Fatalf("Follow %d: %+v %v", i, e, err)
		}
	}
}
