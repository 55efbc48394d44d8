// Package edm is Leakline's exact data match: it turns a CRM export
// (customer id, name, e-mail, phone, ...) into an index of keyed
// fingerprints, recognizes those customers' identifiers in outbound content,
// and tells which matched customers an actor has read.
//
// The index holds no raw value. Each identifier is normalized exactly as
// the content scanner normalizes a detection (lower-case e-mail, E.164
// phone, case-folded "first last" name, ...) and fingerprinted with
// SipHash-2-4 under a 128-bit key derived from the deployment's HMAC key
// (HMAC-SHA256 with a label per identifier type, never the raw key); the
// same derivation keys a fingerprint of each row's customer id, so that the
// detection engine can compare matched customers with the record ids an
// actor read in CRM access events without either side keeping an id.
//
// In memory the (fingerprint, row) pairs live in an order-preserving
// linear-probing table: 12-byte slots (fingerprint, row) at a load factor
// of 0.8, each fingerprint at or just after its home slot (the fingerprint
// scaled to the table size), in fingerprint order. A lookup hashes the
// value and reads from the home slot on, usually within one cache line; a
// value shared by several rows keeps its rows in a side list. That is at
// most 15 bytes per identifier (12 / 0.8, plus 4 per extra row of a
// shared value, which needs no slot), and 8 bytes per row for its
// customer-id fingerprint.
package edm

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/dchest/siphash"

	"github.com/leakline/leakline/pkg/privacy"
)

// Limits of an index.
const (
	// MaxRows bounds the rows of one index (row numbers are below 2^31).
	MaxRows = 1 << 31
	// MaxIdentifiers bounds the identifiers of one index.
	MaxIdentifiers = 1 << 30
	// MaxTypes bounds the identifier types of one index.
	MaxTypes = 64
)

// keyLabel is the domain-separation prefix of every key derived from the
// HMAC key.
const keyLabel = "leakline/edm/v1/"

// sipKey is a 128-bit SipHash key.
type sipKey struct{ k0, k1 uint64 }

// deriveKey derives the SipHash key for label from the HMAC key.
func deriveKey(key []byte, label string) sipKey {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(keyLabel + label))
	s := m.Sum(nil)
	return sipKey{binary.LittleEndian.Uint64(s[0:8]), binary.LittleEndian.Uint64(s[8:16])}
}

// keyCheck is a value stored in the index that proves which key built it
// without revealing the key.
func keyCheck(key []byte) uint64 {
	k := deriveKey(key, "keycheck")
	return k.k0
}

func checkKey(key []byte) error {
	if len(key) < privacy.MinKeyLen {
		return fmt.Errorf("edm: key is %d bytes, need at least %d", len(key), privacy.MinKeyLen)
	}
	return nil
}

// TypeInfo describes one identifier type of an index.
type TypeInfo struct {
	// Name is the identifier type ("email", "phone", "name", ...).
	Name string `json:"name"`
	// Identifiers is how many (value, row) pairs of the type are indexed.
	Identifiers int64 `json:"identifiers"`
	// Skipped counts values of the type that were empty or did not
	// normalize (an invalid e-mail, a phone number in no known format, a
	// one-word name) and were left out.
	Skipped int64 `json:"skipped"`
}

// Info describes an index; it is stored in the index file's header.
type Info struct {
	// ID identifies the index content: the first 16 bytes of a SHA-256
	// over the fingerprints, row numbers, type table and key check, in
	// hex. The same export built with the same key has the same ID.
	ID string `json:"id"`
	// Version is the file format version.
	Version int `json:"version"`
	// Created is when the index was built.
	Created time.Time `json:"created"`
	// Rows is the number of customer rows.
	Rows int64 `json:"rows"`
	// RowsSkipped counts CSV rows left out for lack of a customer id.
	RowsSkipped int64 `json:"rows_skipped"`
	// Identifiers is the total of the types' identifiers.
	Identifiers int64 `json:"identifiers"`
	// Types lists the identifier types in name order.
	Types []TypeInfo `json:"types"`
}

// typeEntry is an identifier type with its fingerprint key.
type typeEntry struct {
	name string
	key  sipKey
}

// table holds (fingerprint, row) pairs sorted by fingerprint (then row),
// packed 12 bytes each: the form Build produces and the file stores.
type table []uint32

func (t table) len() int { return len(t) / 3 }

func (t table) fp(i int) uint64 {
	j := 3 * i
	return uint64(t[j]) | uint64(t[j+1])<<32
}

func (t table) row(i int) uint32 { return t[3*i+2] }

// appendPair appends a pair.
func (t table) appendPair(fp uint64, row uint32) table {
	return append(t, uint32(fp), uint32(fp>>32), row)
}

// multiBit marks a slot's row field as an offset into hashTable.multi.
const multiBit = 1 << 31

// hashTable is the lookup form of a table: an order-preserving
// linear-probing table. Slot i holds a fingerprint (0: empty) and a row,
// or multiBit|k where multi[k] is the number of rows and multi[k+1:] the
// rows. Fingerprints sit in ascending order, each at or after its home
// slot, so a lookup scans from the home slot until it finds the
// fingerprint, a larger one or an empty slot.
type hashTable struct {
	slots []uint32 // 3 per slot: fingerprint low, high, row
	multi []uint32
	homes uint64 // number of home slots (slots may run past them)
	n     int    // pairs
}

// home returns fp's home slot: fp scaled to [0, homes), monotone in fp.
func (h *hashTable) home(fp uint64) int {
	return int((fp >> 32) * h.homes >> 32)
}

// newHashTable lays a sorted table out for lookup. Fingerprints must be
// non-zero.
func newHashTable(t table) hashTable {
	n := t.len()
	distinct := 0
	for i := 0; i < n; i++ {
		if i == 0 || t.fp(i) != t.fp(i-1) {
			distinct++
		}
	}
	h := hashTable{homes: uint64(distinct)*5/4 + 1, n: n}
	// Slot of each distinct fingerprint: its home, or right after the
	// previous one.
	last := -1
	for i := 0; i < n; i++ {
		if i > 0 && t.fp(i) == t.fp(i-1) {
			continue
		}
		last = max(h.home(t.fp(i)), last+1)
	}
	size := max(last+1, int(h.homes))
	h.slots = make([]uint32, 3*size)
	if size >= 1<<18 {
		adviseHuge(unsafe.Pointer(unsafe.SliceData(h.slots)), uintptr(len(h.slots))*4)
	}
	last = -1
	for i := 0; i < n; {
		fp := t.fp(i)
		j := i + 1
		for j < n && t.fp(j) == fp {
			j++
		}
		pos := max(h.home(fp), last+1)
		last = pos
		h.slots[3*pos], h.slots[3*pos+1] = uint32(fp), uint32(fp>>32)
		if j-i == 1 {
			h.slots[3*pos+2] = t.row(i)
		} else {
			h.slots[3*pos+2] = multiBit | uint32(len(h.multi))
			h.multi = append(h.multi, uint32(j-i))
			for k := i; k < j; k++ {
				h.multi = append(h.multi, t.row(k))
			}
		}
		i = j
	}
	return h
}

// find returns the slot of fp, or -1.
func (h *hashTable) find(fp uint64) int {
	s := h.slots
	for i := h.home(fp); 3*i+2 < len(s); i++ {
		v := uint64(s[3*i]) | uint64(s[3*i+1])<<32
		if v >= fp {
			if v == fp {
				return i
			}
			return -1
		}
		if v == 0 {
			return -1
		}
	}
	return -1
}

// rows returns the rows of slot i: one, or a shared value's list.
func (h *hashTable) rows(i int, one *[1]uint32) []uint32 {
	r := h.slots[3*i+2]
	if r&multiBit == 0 {
		one[0] = r
		return one[:]
	}
	k := r &^ multiBit
	return h.multi[k+1 : k+1+h.multi[k]]
}

// each calls fn with every pair in ascending order.
func (h *hashTable) each(fn func(fp uint64, row uint32)) {
	var one [1]uint32
	for i := 0; 3*i+2 < len(h.slots); i++ {
		fp := uint64(h.slots[3*i]) | uint64(h.slots[3*i+1])<<32
		if fp == 0 {
			continue
		}
		for _, r := range h.rows(i, &one) {
			fn(fp, r)
		}
	}
}

// Index is an exact-data-match index. It is immutable and safe for
// concurrent use.
type Index struct {
	info  Info
	idRaw [16]byte
	check uint64
	types []typeEntry

	ht hashTable // (fingerprint, row) pairs

	cust    []uint64 // per row: fingerprint of the customer id
	custKey sipKey
}

// Info returns a description of the index.
func (x *Index) Info() Info {
	in := x.info
	in.Types = slices.Clone(x.info.Types)
	return in
}

// ID returns the index's content id (hex).
func (x *Index) ID() string { return x.info.ID }

// Rows returns the number of customer rows.
func (x *Index) Rows() int { return len(x.cust) }

// Len returns the number of indexed identifiers.
func (x *Index) Len() int { return x.ht.n }

// MemoryBytes returns the bytes the index's tables occupy: the lookup
// table (at most 15 bytes per identifier) and 8 bytes per row.
func (x *Index) MemoryBytes() int64 {
	return int64(len(x.ht.slots))*4 + int64(len(x.ht.multi))*4 + int64(len(x.cust))*8
}

// HasType reports whether the index has identifiers of type typ.
func (x *Index) HasType(typ string) bool { return x.typeKey(typ) != nil }

func (x *Index) typeKey(typ string) *sipKey {
	for i := range x.types {
		if x.types[i].name == typ {
			return &x.types[i].key
		}
	}
	return nil
}

// Fingerprint returns the keyed fingerprint of a normalized identifier of
// type typ, and false when the index has no such type.
func (x *Index) Fingerprint(typ string, normalized []byte) (uint64, bool) {
	k := x.typeKey(typ)
	if k == nil {
		return 0, false
	}
	return k.sum(normalized), true
}

// sum is the SipHash-2-4 fingerprint under k; 0 (the empty slot) is
// never returned.
func (k *sipKey) sum(b []byte) uint64 {
	fp := siphash.Hash(k.k0, k.k1, b)
	if fp == 0 {
		fp = 1
	}
	return fp
}

// Lookup returns the row of a normalized identifier (see Normalize) of
// type typ. When several rows share the identifier it returns the lowest;
// LookupAll returns them all. It does not allocate.
func (x *Index) Lookup(typ string, normalized []byte) (row uint32, ok bool) {
	fp, ok := x.Fingerprint(typ, normalized)
	if !ok {
		return 0, false
	}
	i := x.ht.find(fp)
	if i < 0 {
		return 0, false
	}
	var one [1]uint32
	return x.ht.rows(i, &one)[0], true
}

// LookupAll appends to dst every row holding the normalized identifier of
// type typ, in ascending order.
func (x *Index) LookupAll(typ string, normalized []byte, dst []uint32) []uint32 {
	fp, ok := x.Fingerprint(typ, normalized)
	if !ok {
		return dst
	}
	i := x.ht.find(fp)
	if i < 0 {
		return dst
	}
	var one [1]uint32
	return append(dst, x.ht.rows(i, &one)...)
}

// Touch reads the memory a lookup of fp will read and returns a value of
// no meaning. Touching the fingerprints of a batch of candidates first and
// looking them up afterwards lets their cache misses overlap instead of
// queueing one behind the other (the Matcher does this); sum the results
// into a variable that is used, so that the reads are not optimized away.
func (x *Index) Touch(fp uint64) uint32 {
	if len(x.ht.slots) == 0 {
		return 0
	}
	return x.ht.slots[3*x.ht.home(fp)]
}

// LookupFingerprint is Lookup for a fingerprint from Fingerprint.
func (x *Index) LookupFingerprint(fp uint64) (uint32, bool) {
	i := x.ht.find(fp)
	if i < 0 {
		return 0, false
	}
	var one [1]uint32
	return x.ht.rows(i, &one)[0], true
}

// LookupAllFingerprint is LookupAll for a fingerprint from Fingerprint.
func (x *Index) LookupAllFingerprint(fp uint64, dst []uint32) []uint32 {
	i := x.ht.find(fp)
	if i < 0 {
		return dst
	}
	var one [1]uint32
	return append(dst, x.ht.rows(i, &one)...)
}

// LookupValue normalizes value as an identifier of type typ and looks it
// up.
func (x *Index) LookupValue(typ string, value []byte) (uint32, bool) {
	var buf [MaxValueLen * 2]byte
	norm, ok := Normalize(typ, value, buf[:0])
	if !ok {
		return 0, false
	}
	return x.Lookup(typ, norm)
}

// CustomerFingerprint returns the keyed fingerprint of row's customer id:
// equal to FingerprintID of that id. It panics if row is out of range.
func (x *Index) CustomerFingerprint(row uint32) uint64 { return x.cust[row] }

// FingerprintID returns the keyed fingerprint of a customer id — a CRM
// access event's record id — comparable with CustomerFingerprint. It
// depends only on the key, so fingerprints stay valid across index
// versions built with the same key; an id that does not normalize (empty)
// yields 0, which no row has.
func (x *Index) FingerprintID(customerID string) uint64 {
	return fingerprintID(x.custKey, customerID)
}

// IDFingerprinter computes customer-id fingerprints without an index
// (FingerprintID), for the side that records which ids an actor read.
type IDFingerprinter struct{ key sipKey }

// NewIDFingerprinter derives the customer-id fingerprint key from the
// HMAC key (at least 32 bytes).
func NewIDFingerprinter(key []byte) (*IDFingerprinter, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return &IDFingerprinter{key: deriveKey(key, "customer")}, nil
}

// FingerprintID is Index.FingerprintID.
func (f *IDFingerprinter) FingerprintID(customerID string) uint64 {
	return fingerprintID(f.key, customerID)
}

func fingerprintID(k sipKey, id string) uint64 {
	var buf [MaxValueLen + 8]byte
	if len(id) > MaxValueLen*2 {
		return 0
	}
	norm, ok := NormalizeID([]byte(id), buf[:0])
	if !ok {
		return 0
	}
	return k.sum(norm) // never 0, which means "no id"
}

// errKey is returned when an index was built with another key.
var errKey = errors.New("edm: the index was built with a different key")

// newIndex finishes an index from a sorted table (which it consumes):
// type keys, lookup table.
func newIndex(key []byte, info Info, tab table, cust []uint64) *Index {
	x := &Index{info: info, cust: cust, check: keyCheck(key)}
	for _, t := range info.Types {
		x.types = append(x.types, typeEntry{name: t.Name, key: deriveKey(key, "type/"+t.Name)})
	}
	x.custKey = deriveKey(key, "customer")
	x.ht = newHashTable(tab)
	return x
}

// contentID computes the index id from its tables: the same bytes as the
// file's tables, in the same order.
func contentID(check uint64, types []TypeInfo, ht *hashTable, cust []uint64) [16]byte {
	h := sha256.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], check)
	h.Write(b[:])
	for _, t := range types {
		h.Write([]byte(t.Name))
		h.Write([]byte{0})
	}
	tw := newTableWriter(h)
	tw.tables(ht, cust)
	tw.flush()
	var id [16]byte
	copy(id[:], h.Sum(nil))
	return id
}

func hexID(id [16]byte) string { return hex.EncodeToString(id[:]) }
