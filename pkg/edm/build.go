package edm

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unsafe"
)

// BuildOptions says which columns of a CRM export to index.
type BuildOptions struct {
	// Columns maps CSV column names (header cells, compared
	// case-insensitively after trimming) to identifier types: "email",
	// "phone", "name" (a full name), "first_name" and "last_name" (joined
	// into a "name" identifier), "card", "ssn", "iban", "nino", or any
	// other type name (ValidType), normalized as an opaque id — e.g.
	// "customer_id" to find the customer ids themselves in content.
	Columns map[string]string
	// IDColumn is the column holding the customer id (the CRM record id
	// that access events carry). Required.
	IDColumn string
	// Comma is the field separator; 0 means ','.
	Comma rune
	// Created is recorded as the build time; zero means now.
	Created time.Time
}

// pair is one indexed identifier during a build.
type pair struct {
	fp  uint64
	row uint32
	typ uint8 // index in the sorted type names
}

// colSpec is one CSV column to index.
type colSpec struct {
	idx int
	typ string // identifier type; TypeFirstName / TypeLastName are joined
}

// Build reads a CSV export with a header row from r and builds an index of
// the columns opt names, keyed with key (the deployment's HMAC key, at
// least 32 bytes; only keys derived from it are used). Every data row with
// a non-empty customer id becomes a row of the index, in file order; values
// that do not normalize are counted as skipped, not indexed. No raw value
// is kept.
func Build(r io.Reader, opt BuildOptions, key []byte) (*Index, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if strings.TrimSpace(opt.IDColumn) == "" {
		return nil, errors.New("edm: no customer id column")
	}
	if len(opt.Columns) == 0 {
		return nil, errors.New("edm: no columns to index")
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	if opt.Comma != 0 {
		cr.Comma = opt.Comma
	}
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("edm: read CSV header: %w", err)
	}
	pos := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := pos[h]; !dup {
			pos[h] = i
		}
	}
	colOf := func(name string) (int, error) {
		i, ok := pos[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return 0, fmt.Errorf("edm: column %q not in the CSV header", name)
		}
		return i, nil
	}
	idCol, err := colOf(opt.IDColumn)
	if err != nil {
		return nil, err
	}
	var specs []colSpec
	typeSet := map[string]bool{}
	first, last := -1, -1
	for _, name := range slices.Sorted(maps.Keys(opt.Columns)) {
		typ := strings.ToLower(strings.TrimSpace(opt.Columns[name]))
		if !ValidType(typ) {
			return nil, fmt.Errorf("edm: column %q: invalid identifier type %q (lower-case letters, digits, _)", name, opt.Columns[name])
		}
		i, err := colOf(name)
		if err != nil {
			return nil, err
		}
		switch typ {
		case TypeFirstName:
			first = i
		case TypeLastName:
			last = i
		default:
			specs = append(specs, colSpec{idx: i, typ: typ})
			typeSet[typ] = true
		}
	}
	if (first >= 0) != (last >= 0) {
		return nil, errors.New("edm: first_name and last_name columns go together")
	}
	if first >= 0 {
		typeSet[TypeName] = true
	}
	if len(typeSet) > MaxTypes {
		return nil, fmt.Errorf("edm: %d identifier types, at most %d", len(typeSet), MaxTypes)
	}
	typeNames := slices.Sorted(maps.Keys(typeSet))
	stats := make([]TypeInfo, len(typeNames))
	keys := make([]sipKey, len(typeNames))
	typeIdx := make(map[string]uint8, len(typeNames))
	for i, t := range typeNames {
		stats[i] = TypeInfo{Name: t}
		keys[i] = deriveKey(key, "type/"+t)
		typeIdx[t] = uint8(i)
	}
	custKey := deriveKey(key, "customer")

	var (
		pairs       []pair
		cust        []uint64
		rowsSkipped int64
		norm        = make([]byte, 0, 2*MaxValueLen)
		joined      = make([]byte, 0, 2*MaxValueLen)
	)
	add := func(typ string, value []byte, row uint32) {
		ti := typeIdx[typ]
		st := &stats[ti]
		if len(bytes.TrimSpace(value)) == 0 {
			st.Skipped++
			return
		}
		var ok bool
		norm, ok = Normalize(typ, value, norm[:0])
		if !ok {
			st.Skipped++
			return
		}
		k := keys[ti]
		pairs = append(pairs, pair{k.sum(norm), row, ti})
		st.Identifiers++
		if typ == TypeName {
			// A name of three or more words is also indexed as its first
			// and last word ("mary ann smith" → "mary smith").
			if f, l := strings.IndexByte(string(norm), ' '), bytes.LastIndexByte(norm, ' '); f != l {
				joined = append(append(append(joined[:0], norm[:f]...), ' '), norm[l+1:]...)
				pairs = append(pairs, pair{k.sum(joined), row, ti})
				st.Identifiers++
			}
		}
	}
	field := func(rec []string, i int) []byte {
		if i < len(rec) {
			// Read-only view: Normalize does not modify its input.
			return unsafe.Slice(unsafe.StringData(rec[i]), len(rec[i]))
		}
		return nil
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("edm: read CSV: %w", err)
		}
		if len(rec) == 1 && rec[0] == "" {
			continue
		}
		idFP := fingerprintID(custKey, string(field(rec, idCol)))
		if idFP == 0 {
			rowsSkipped++
			continue
		}
		if len(cust) >= MaxRows {
			return nil, fmt.Errorf("edm: more than %d rows", MaxRows)
		}
		row := uint32(len(cust))
		cust = append(cust, idFP)
		for _, c := range specs {
			add(c.typ, field(rec, c.idx), row)
		}
		if first >= 0 {
			fn, ln := field(rec, first), field(rec, last)
			joined = append(append(append(joined[:0], fn...), ' '), ln...)
			add(TypeName, bytes.Clone(joined), row)
		}
		if int64(len(pairs)) > MaxIdentifiers {
			return nil, fmt.Errorf("edm: more than %d identifiers", int64(MaxIdentifiers))
		}
	}

	// Sort by fingerprint (then row) and drop exact duplicates (the same
	// value twice in one row, or a three-word name's first-last form equal
	// to another name column).
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := cmp.Compare(a.fp, b.fp); c != 0 {
			return c
		}
		return cmp.Compare(a.row, b.row)
	})
	tab := make(table, 0, 3*len(pairs))
	for i, p := range pairs {
		if i > 0 && p.fp == pairs[i-1].fp && p.row == pairs[i-1].row {
			stats[p.typ].Identifiers--
			continue
		}
		tab = tab.appendPair(p.fp, p.row)
	}
	pairs = nil

	info := Info{Version: FormatVersion, Created: opt.Created, Rows: int64(len(cust)), RowsSkipped: rowsSkipped, Identifiers: int64(tab.len()), Types: stats}
	if info.Created.IsZero() {
		info.Created = time.Now()
	}
	info.Created = info.Created.UTC().Truncate(time.Millisecond)
	x := newIndex(key, info, tab, cust)
	x.idRaw = contentID(x.check, info.Types, &x.ht, cust)
	x.info.ID = hexID(x.idRaw)
	return x, nil
}
