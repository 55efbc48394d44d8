package detect

import (
	"encoding/binary"
	"math"
)

// maxGroupRefs bounds the contributing event ids a group remembers before
// an incident opens (an open incident lists up to finding.MaxEventIDs).
const maxGroupRefs = 8

// noCut is a cut that drops nothing.
const noCut = math.MinInt64

// groupRec is a group's key and its contributing events (time and id,
// oldest first), packed into one byte slice: the key's length (uvarint)
// and bytes, then per event its time (8 bytes, little endian), the id's
// length (uvarint) and the id's bytes. A group thus holds one small
// allocation instead of a key string and a slice of strings that each keep
// a decoded event's id alive. Ids and the key become strings again only
// when an incident opens.
type groupRec []byte

func newGroupRec(key string) groupRec {
	// Room for the key and one event with a short id: most groups hold
	// one or two events.
	b := make([]byte, 0, 1+len(key)+8+1+12)
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(b, key...)
}

// key is the group's key; it shares the record's memory.
func (r groupRec) key() []byte {
	n, w := binary.Uvarint(r)
	return r[w : w+int(n)]
}

// refsStart is where the events begin.
func (r groupRec) refsStart() int {
	n, w := binary.Uvarint(r)
	return w + int(n)
}

// clearRefs drops every event, keeping the key.
func (r *groupRec) clearRefs() { *r = (*r)[:r.refsStart()] }

// push appends an event, then drops the leading events older than cut and
// keeps at most maxGroupRefs, the newest.
func (r *groupRec) push(at int64, id string, cut int64) {
	start := r.refsStart()
	b := binary.LittleEndian.AppendUint64(*r, uint64(at))
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	n, off, keep := 0, start, 0
	for rest := b[start:]; len(rest) > 0; n++ {
		t, _, size := decodeRef(rest)
		if keep == 0 && t < cut && cut != noCut {
			off += size // a leading event older than the cut
		} else {
			keep++
		}
		rest = rest[size:]
	}
	for rest := b[off:]; keep > maxGroupRefs; keep-- {
		_, _, size := decodeRef(rest)
		off += size
		rest = rest[size:]
	}
	if off > start {
		b = append(b[:start], b[off:]...)
	}
	*r = b
}

// each calls fn for every event, oldest first. id is only valid during the
// call.
func (r groupRec) each(fn func(at int64, id []byte)) {
	for rest := r[r.refsStart():]; len(rest) > 0; {
		t, id, size := decodeRef(rest)
		fn(t, id)
		rest = rest[size:]
	}
}

func decodeRef(b []byte) (at int64, id []byte, size int) {
	at = int64(binary.LittleEndian.Uint64(b))
	n, w := binary.Uvarint(b[8:])
	start := 8 + w
	return at, b[start : start+int(n)], start + int(n)
}
