// Package ruledeploy publishes signed rule packs to Kafka and reads them
// back: the deploy, rollback, history and diff of `leakline rules …`, and
// what detectors follow to hot-swap their pack.
//
// A deployed pack is one JSON Message on partition 0 of the compacted topic
// DefaultTopic (dlp.rules), key "pack". It carries the pack's YAML files
// (fixtures excluded), its version and checksum, a monotonic deploy number
// (Seq), who deployed it, when and why, and an ed25519 signature over a
// canonical encoding of all of that. Detectors accept a message only if it
// verifies with their public key, compiles, matches its checksum and is
// newer (higher Seq) than the pack they run.
//
// Keys are PEM files (PKCS #8 private key, PKIX public key — the formats of
// `openssl genpkey -algorithm ed25519`); key material is never logged.
//
// Workflow:
//
//	leakline rules keygen -o rules.key          # rules.key (secret) + rules.key.pub
//	# detectors: LEAKLINE_RULES_PUBLIC_KEY_FILE=rules.key.pub (hot reload on)
//	leakline rules diff DIR --brokers B         # what would change
//	leakline rules deploy DIR -m WHY --key-file rules.key --brokers B
//	leakline rules status --brokers B --public-key rules.key.pub
//	leakline rules history --brokers B
//	leakline rules rollback SEQ --key-file rules.key --brokers B
//
// Detectors publish a heartbeat (Status) to DefaultStatusTopic: the pack
// they run and the last pack they rejected. Deploys can also be recorded in
// ClickHouse's rule_deploys table (Record, Recorded).
//
// The rules topic is compacted with a minimum compaction lag of 30 days:
// History and rollback reach every deploy of the last 30 days and, older,
// at least the newest one.
package ruledeploy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/leakline/leakline/pkg/rules"
)

// DefaultTopic is the compacted topic deployed packs are published to.
const DefaultTopic = "dlp.rules"

// MessageKey is the Kafka key of every deployed pack message: compaction
// keeps the newest one.
const MessageKey = "pack"

// MaxMessageBytes bounds an encoded message (Kafka's default
// max.message.bytes is 1 MiB).
const MaxMessageBytes = 900 << 10

// Environment variables naming the key files.
const (
	EnvSigningKeyFile = "LEAKLINE_RULES_SIGNING_KEY_FILE"
	EnvPublicKeyFile  = "LEAKLINE_RULES_PUBLIC_KEY_FILE"
)

// Errors of Verify. Each is distinct so a rejection can be counted by
// reason.
var (
	// ErrUnsigned: the message has no signature or no key id.
	ErrUnsigned = errors.New("ruledeploy: the pack is not signed")
	// ErrWrongKey: the message was signed by another key than the one
	// verifying it.
	ErrWrongKey = errors.New("ruledeploy: the pack is signed by an unknown key")
	// ErrTampered: the signature does not match the content.
	ErrTampered = errors.New("ruledeploy: the pack's signature does not match its content")
)

// ErrChecksum is returned by Message.Pack when the compiled files do not
// have the checksum or version the message states.
var ErrChecksum = errors.New("ruledeploy: the pack's files do not match its checksum")

// Message is one deployed pack as published on the rules topic.
type Message struct {
	// Version is the pack's version (pack.yaml).
	Version string `json:"version"`
	// Seq is the deploy number: each deploy or rollback publishes
	// the previous Seq + 1. Detectors refuse a Seq not above theirs.
	Seq uint64 `json:"seq"`
	// Author and Message say who deployed it and why.
	Author  string `json:"author"`
	Message string `json:"message"`
	// Time is when it was deployed (UTC).
	Time time.Time `json:"time"`
	// Checksum is the compiled pack's rules.Pack.Checksum.
	Checksum string `json:"checksum"`
	// Files are the pack's YAML files, name → content (UTF-8), fixtures
	// excluded; rules.Parse(Files) compiles the pack.
	Files map[string]string `json:"files"`
	// Signature is the base64 ed25519 signature of Canonical(); KeyID
	// names the key (KeyID of its public key).
	Signature string `json:"signature,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
}

// ReadPackFiles reads the files of the pack in dir that rules.LoadDir
// compiles: pack.yaml and every other *.yaml / *.yml file at the top of
// dir (fixtures in tests/ and other files are left out).
func ReadPackFiles(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		if len(files) >= rules.MaxPackFiles {
			return nil, fmt.Errorf("ruledeploy: %s: more than %d YAML files", dir, rules.MaxPackFiles)
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		if len(b) > rules.MaxFileBytes {
			return nil, fmt.Errorf("ruledeploy: %s: larger than %d bytes", filepath.Join(dir, n), rules.MaxFileBytes)
		}
		files[n] = b
	}
	return files, nil
}

// NewMessage compiles files (as ReadPackFiles returns them) and returns an
// unsigned message for them with the given seq, author and message, dated
// now. It fails if the pack does not compile or a file is not UTF-8.
func NewMessage(files map[string][]byte, seq uint64, author, message string, now time.Time) (*Message, *rules.Pack, error) {
	p, err := rules.Parse(files)
	if err != nil {
		return nil, nil, err
	}
	m := &Message{Version: p.Version, Seq: seq, Author: author, Message: message,
		Time: now.UTC().Truncate(time.Millisecond), Checksum: p.Checksum, Files: make(map[string]string, len(files))}
	for name, b := range files {
		if !utf8.Valid(b) {
			return nil, nil, fmt.Errorf("ruledeploy: %s is not UTF-8", name)
		}
		m.Files[name] = string(b)
	}
	return m, p, nil
}

// FileBytes returns Files as rules.Parse takes them.
func (m *Message) FileBytes() map[string][]byte {
	out := make(map[string][]byte, len(m.Files))
	for k, v := range m.Files {
		out[k] = []byte(v)
	}
	return out
}

// Pack compiles the message's files and checks that they have the
// message's checksum and version (the error wraps ErrChecksum otherwise).
// It does not check the signature: call Verify first.
func (m *Message) Pack() (*rules.Pack, error) {
	p, err := rules.Parse(m.FileBytes())
	if err != nil {
		return nil, err
	}
	if p.Checksum != m.Checksum || p.Version != m.Version {
		return nil, fmt.Errorf("%w: compiled version %s checksum %s, message says version %s checksum %s",
			ErrChecksum, p.Version, short(p.Checksum), m.Version, short(m.Checksum))
	}
	return p, nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// canonicalFormat starts the canonical encoding; it changes with the
// encoding.
const canonicalFormat = "leakline.rulepack.deploy.v1"

// Canonical is the byte string the signature covers: every field but
// Signature, each length-prefixed (8-byte big-endian), files sorted by name.
// Time is encoded as RFC 3339 with nanoseconds in UTC.
func (m *Message) Canonical() []byte {
	var b bytes.Buffer
	put := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		b.Write(n[:])
		b.WriteString(s)
	}
	putU := func(u uint64) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], u)
		b.Write(n[:])
	}
	put(canonicalFormat)
	put(m.Version)
	putU(m.Seq)
	put(m.Author)
	put(m.Message)
	put(m.Time.UTC().Format(time.RFC3339Nano))
	put(m.Checksum)
	put(m.KeyID)
	names := make([]string, 0, len(m.Files))
	for n := range m.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	putU(uint64(len(names)))
	for _, n := range names {
		put(n)
		put(m.Files[n])
	}
	return b.Bytes()
}

// Sign sets the message's KeyID to priv's and signs it.
func Sign(m *Message, priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return errors.New("ruledeploy: Sign: not an ed25519 private key")
	}
	m.KeyID = KeyID(priv.Public().(ed25519.PublicKey))
	m.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, m.Canonical()))
	return nil
}

// Verify checks the message's signature with pub. The error is (wraps)
// ErrUnsigned, ErrWrongKey or ErrTampered.
func Verify(m *Message, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return errors.New("ruledeploy: Verify: not an ed25519 public key")
	}
	if m.Signature == "" || m.KeyID == "" {
		return ErrUnsigned
	}
	if want := KeyID(pub); m.KeyID != want {
		return fmt.Errorf("%w: signed by key %s, verifying with key %s", ErrWrongKey, m.KeyID, want)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: the signature is malformed", ErrTampered)
	}
	if !ed25519.Verify(pub, m.Canonical(), sig) {
		return ErrTampered
	}
	return nil
}

// Encode returns the message's JSON, refusing one larger than
// MaxMessageBytes.
func (m *Message) Encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("ruledeploy: the encoded pack is %d bytes, the limit is %d", len(b), MaxMessageBytes)
	}
	return b, nil
}

// Decode parses a message's JSON. Unknown fields are refused.
func Decode(b []byte) (*Message, error) {
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("ruledeploy: message of %d bytes, the limit is %d", len(b), MaxMessageBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Message
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("ruledeploy: decode pack message: %w", err)
	}
	if dec.More() {
		return nil, errors.New("ruledeploy: decode pack message: trailing data")
	}
	return &m, nil
}
