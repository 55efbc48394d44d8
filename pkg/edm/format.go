package edm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// The index file (little-endian throughout):
//
//	magic        8 bytes  "LLEDMIDX"
//	version      uint32   FormatVersion
//	header size  uint32   bytes of the header that follows (≤ maxHeader)
//	header:
//	  id           16 bytes
//	  created      int64    Unix milliseconds
//	  key check    uint64   proves which key built the index
//	  rows         uint64
//	  rows skipped uint64
//	  identifiers  uint64
//	  types        uint16, then per type: name length uint8, name,
//	               identifiers uint64, skipped uint64
//	fingerprints identifiers × uint64, ascending
//	rows         identifiers × uint32, each < rows
//	customer ids rows × uint64
//	checksum     SHA-256 of everything before it
//
// Load verifies the magic, the version, every count against the limits
// and the others, the key check, the order of the fingerprints, every row
// number and the checksum; a damaged or truncated file fails cleanly and
// allocates no more than the data it actually holds.

// FormatVersion is the version of the index file format this package
// writes and reads.
const FormatVersion = 1

const (
	magic     = "LLEDMIDX"
	maxHeader = 64 << 10
	// readChunk is how many bytes of a table Load reads at a time, so that
	// a header announcing more than the file holds cannot make it allocate
	// more than the file.
	readChunk = 256 << 10
)

// ErrFormat is wrapped by every error about a damaged, truncated or
// foreign index file.
var ErrFormat = errors.New("edm: invalid index file")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// WriteTo writes the index file to w.
func (x *Index) WriteTo(w io.Writer) (int64, error) {
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	bw := bufio.NewWriterSize(cw, 256<<10)

	var hdr []byte
	hdr = append(hdr, x.idRaw[:]...)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(x.info.Created.UnixMilli()))
	hdr = binary.LittleEndian.AppendUint64(hdr, x.check)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(len(x.cust)))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(x.info.RowsSkipped))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(x.ht.n))
	hdr = binary.LittleEndian.AppendUint16(hdr, uint16(len(x.info.Types)))
	for _, t := range x.info.Types {
		hdr = append(hdr, byte(len(t.Name)))
		hdr = append(hdr, t.Name...)
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(t.Identifiers))
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(t.Skipped))
	}
	var pre []byte
	pre = append(pre, magic...)
	pre = binary.LittleEndian.AppendUint32(pre, FormatVersion)
	pre = binary.LittleEndian.AppendUint32(pre, uint32(len(hdr)))
	bw.Write(pre)
	bw.Write(hdr)
	tw := newTableWriter(bw)
	tw.tables(&x.ht, x.cust)
	tw.flush()
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("edm: write index: %w", err)
	}
	sum := h.Sum(nil)
	n, err := w.Write(sum)
	cw.n += int64(n)
	if err != nil {
		return cw.n, fmt.Errorf("edm: write index: %w", err)
	}
	return cw.n, nil
}

// MarshalBinary returns the index file.
func (x *Index) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(int(x.MemoryBytes()) + 1024)
	if _, err := x.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// tableWriter writes the file's tables through a buffer.
type tableWriter struct {
	w   io.Writer
	buf []byte
}

func newTableWriter(w io.Writer) *tableWriter {
	return &tableWriter{w: w, buf: make([]byte, 0, 64<<10)}
}

func (tw *tableWriter) room(n int) {
	if len(tw.buf)+n > cap(tw.buf) {
		tw.flush()
	}
}

func (tw *tableWriter) flush() {
	tw.w.Write(tw.buf) // errors surface at the caller's Flush/Sum
	tw.buf = tw.buf[:0]
}

// tables writes the fingerprints, the row numbers and the customer
// fingerprints.
func (tw *tableWriter) tables(ht *hashTable, cust []uint64) {
	ht.each(func(fp uint64, _ uint32) {
		tw.room(8)
		tw.buf = binary.LittleEndian.AppendUint64(tw.buf, fp)
	})
	ht.each(func(_ uint64, row uint32) {
		tw.room(4)
		tw.buf = binary.LittleEndian.AppendUint32(tw.buf, row)
	})
	for _, v := range cust {
		tw.room(8)
		tw.buf = binary.LittleEndian.AppendUint64(tw.buf, v)
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fileHeader is a parsed header.
type fileHeader struct {
	info  Info
	id    [16]byte
	check uint64
}

// readHeader reads and checks the fixed part and the header, feeding
// everything read to h.
func readHeader(r io.Reader, h hash.Hash) (fileHeader, error) {
	var fh fileHeader
	var pre [16]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return fh, formatErr("reading the file header: %v", err)
	}
	h.Write(pre[:])
	if string(pre[:8]) != magic {
		return fh, formatErr("not an EDM index (bad magic)")
	}
	if v := binary.LittleEndian.Uint32(pre[8:]); v != FormatVersion {
		return fh, formatErr("format version %d, this build reads version %d", v, FormatVersion)
	}
	n := binary.LittleEndian.Uint32(pre[12:])
	if n > maxHeader || n < 16+8*5+2 {
		return fh, formatErr("header size %d out of range", n)
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fh, formatErr("reading the header: %v", err)
	}
	h.Write(hdr)
	p := hdrParser{b: hdr}
	copy(fh.id[:], p.bytes(16))
	created := int64(p.u64())
	fh.check = p.u64()
	rows, skipped, ids := p.u64(), p.u64(), p.u64()
	nt := int(p.u16())
	if p.err {
		return fh, formatErr("short header")
	}
	if rows > MaxRows || ids > MaxIdentifiers || skipped > 1<<62 {
		return fh, formatErr("counts out of range (rows %d, identifiers %d)", rows, ids)
	}
	if nt > MaxTypes {
		return fh, formatErr("%d identifier types, at most %d", nt, MaxTypes)
	}
	info := Info{Version: FormatVersion, Created: time.UnixMilli(created).UTC(), Rows: int64(rows), RowsSkipped: int64(skipped), Identifiers: int64(ids)}
	var sum uint64
	for k := 0; k < nt; k++ {
		l := int(p.u8())
		name := string(p.bytes(l))
		cnt, sk := p.u64(), p.u64()
		if p.err {
			return fh, formatErr("short type table")
		}
		if !ValidType(name) || (k > 0 && name <= info.Types[k-1].Name) {
			return fh, formatErr("bad identifier type name %q", name)
		}
		if cnt > ids || sk > 1<<62 {
			return fh, formatErr("type %s: counts out of range", name)
		}
		sum += cnt
		info.Types = append(info.Types, TypeInfo{Name: name, Identifiers: int64(cnt), Skipped: int64(sk)})
	}
	if sum != ids {
		return fh, formatErr("type counts sum to %d, header says %d identifiers", sum, ids)
	}
	if len(p.b) != 0 {
		return fh, formatErr("%d unexpected header bytes", len(p.b))
	}
	info.ID = hexID(fh.id)
	fh.info = info
	return fh, nil
}

type hdrParser struct {
	b   []byte
	err bool
}

func (p *hdrParser) bytes(n int) []byte {
	if len(p.b) < n {
		p.err = true
		p.b = nil
		return make([]byte, n)
	}
	v := p.b[:n]
	p.b = p.b[n:]
	return v
}
func (p *hdrParser) u8() uint8   { return p.bytes(1)[0] }
func (p *hdrParser) u16() uint16 { return binary.LittleEndian.Uint16(p.bytes(2)) }
func (p *hdrParser) u64() uint64 { return binary.LittleEndian.Uint64(p.bytes(8)) }

// readChunks reads n little-endian values of size bytes each (4 or 8),
// calling put with each chunk, feeding everything read to h. Chunks are
// read as data arrives, so a header that announces more than the file
// holds costs no more memory than the file.
func readChunks(r io.Reader, h hash.Hash, n, size uint64, what string, put func([]byte)) error {
	buf := make([]byte, min(n*size, readChunk))
	for left := n; left > 0; {
		k := min(left, readChunk/size)
		b := buf[:k*size]
		if _, err := io.ReadFull(r, b); err != nil {
			return formatErr("reading %s: %v (file truncated?)", what, err)
		}
		h.Write(b)
		put(b)
		left -= k
	}
	return nil
}

// Load reads an index file written by WriteTo. key must be the key the
// index was built with (a different key is an error: its fingerprints
// would never match). The whole file is verified (see the format above).
func Load(r io.Reader, key []byte) (*Index, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	h := sha256.New()
	fh, err := readHeader(r, h)
	if err != nil {
		return nil, err
	}
	if fh.check != keyCheck(key) {
		return nil, errKey
	}
	ids, rowsN := uint64(fh.info.Identifiers), uint64(fh.info.Rows)
	tab := make(table, 0, 3*min(ids, readChunk))
	err = readChunks(r, h, ids, 8, "fingerprints", func(b []byte) {
		for i := 0; i < len(b); i += 8 {
			tab = append(tab, binary.LittleEndian.Uint32(b[i:]), binary.LittleEndian.Uint32(b[i+4:]), 0)
		}
	})
	if err != nil {
		return nil, err
	}
	next := 2
	bad := -1
	err = readChunks(r, h, ids, 4, "row numbers", func(b []byte) {
		for i := 0; i < len(b); i += 4 {
			v := binary.LittleEndian.Uint32(b[i:])
			if uint64(v) >= rowsN && bad < 0 {
				bad = next / 3
			}
			tab[next] = v
			next += 3
		}
	})
	if err != nil {
		return nil, err
	}
	cust := make([]uint64, 0, min(rowsN, readChunk))
	err = readChunks(r, h, rowsN, 8, "customer fingerprints", func(b []byte) {
		for i := 0; i < len(b); i += 8 {
			cust = append(cust, binary.LittleEndian.Uint64(b[i:]))
		}
	})
	if err != nil {
		return nil, err
	}
	if err := readChecksum(r, h); err != nil {
		return nil, err
	}
	if bad >= 0 {
		return nil, formatErr("row number out of range at %d", bad)
	}
	for i := 0; i < tab.len(); i++ {
		switch {
		case tab.fp(i) == 0:
			return nil, formatErr("fingerprint 0 at %d", i)
		case i > 0 && (tab.fp(i) < tab.fp(i-1) || tab.fp(i) == tab.fp(i-1) && tab.row(i) <= tab.row(i-1)):
			return nil, formatErr("pairs not sorted at %d", i)
		}
	}
	x := newIndex(key, fh.info, tab, cust)
	x.idRaw = fh.id
	return x, nil
}

// readChecksum reads the trailing checksum, compares it with h and checks
// that nothing follows.
func readChecksum(r io.Reader, h hash.Hash) error {
	var sum [sha256.Size]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return formatErr("reading the checksum: %v (file truncated?)", err)
	}
	if !bytes.Equal(sum[:], h.Sum(nil)) {
		return formatErr("checksum mismatch (file damaged)")
	}
	var one [1]byte
	if n, _ := io.ReadFull(r, one[:]); n != 0 {
		return formatErr("data after the checksum")
	}
	return nil
}

// ReadInfo reads an index file's header and verifies its checksum without
// the key (publishers and the info command use it). It reads the whole
// file but keeps none of the tables.
func ReadInfo(r io.Reader) (Info, int64, error) {
	h := sha256.New()
	cr := &countReader{r: r}
	fh, err := readHeader(cr, h)
	if err != nil {
		return Info{}, cr.n, err
	}
	body := uint64(fh.info.Identifiers)*12 + uint64(fh.info.Rows)*8
	n, err := io.CopyN(h, cr, int64(body))
	if err != nil || uint64(n) != body {
		return Info{}, cr.n, formatErr("tables: %d of %d bytes (file truncated?)", n, body)
	}
	if err := readChecksum(cr, h); err != nil {
		return Info{}, cr.n, err
	}
	return fh.info, cr.n, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
