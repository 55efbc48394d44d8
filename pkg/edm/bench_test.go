package edm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/testenv"
)

// The 1 M-row export is generated once per test binary (~90 MB).
var (
	bigOnce sync.Once
	bigCSV  []byte
	bigIdx  *Index
)

func bigIndex(b testing.TB) ([]byte, *Index) {
	bigOnce.Do(func() {
		bigCSV = genCSV(1_000_000, 1)
		x, err := Build(bytes.NewReader(bigCSV), BuildOptions{Columns: genColumns, IDColumn: "customer_id"}, testKey)
		if err != nil {
			panic(err)
		}
		bigIdx = x
	})
	return bigCSV, bigIdx
}

// BenchmarkBuild builds the index of a generated 1 M-row export (customer
// id, first and last name, e-mail, phone: 4 identifiers per row) and
// reports the memory per identifier.
//
//	go test ./pkg/edm -run '^$' -bench Build -benchtime 3x
func BenchmarkBuild(b *testing.B) {
	csv, _ := bigIndex(b)
	b.SetBytes(int64(len(csv)))
	b.ReportAllocs()
	var x *Index
	for b.Loop() {
		var err error
		x, err = Build(bytes.NewReader(csv), BuildOptions{Columns: genColumns, IDColumn: "customer_id"}, testKey)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(x.Rows()), "rows")
	b.ReportMetric(float64(x.Len()), "identifiers")
	tables := x.MemoryBytes() - int64(x.Rows())*8
	b.ReportMetric(float64(tables)/float64(x.Len()), "B/identifier")
	b.ReportMetric(8, "B/row")
}

// lookupKeys returns normalized identifiers of every 4th row of the
// export (e-mail, customer id, name; ~750 k values, far more than the CPU
// caches hold) and as many absent e-mails.
func lookupKeys(csv []byte) (types []string, present, absent [][]byte) {
	lines := bytes.Split(csv, []byte("\n"))
	for i := 1; i < len(lines); i += 4 {
		f := bytes.Split(lines[i], []byte(","))
		if len(f) < 5 {
			continue
		}
		id, _ := Normalize(TypeCustomerID, f[0], nil)
		email, _ := Normalize(TypeEmail, f[3], nil)
		name, _ := Normalize(TypeName, append(append(bytes.Clone(f[1]), ' '), f[2]...), nil)
		present = append(present, email, id, name)
		types = append(types, TypeEmail, TypeCustomerID, TypeName)
		absent = append(absent, []byte(fmt.Sprintf("nobody.%d@example.org", i)))
	}
	return types, present, absent
}

// BenchmarkLookup looks up normalized identifiers in the 1 M-row index,
// values present and absent, in an order that defeats the caches.
//
//	go test ./pkg/edm -run '^$' -bench Lookup
func BenchmarkLookup(b *testing.B) {
	csv, x := bigIndex(b)
	types, present, absent := lookupKeys(csv)
	// Lay the keys out in a scattered order of rows but contiguously in
	// memory, so that reading them costs no cache miss of its own: only
	// the index lookups do.
	perm := rand.New(rand.NewPCG(3, 4)).Perm(len(present))
	typeNames := []string{TypeEmail, TypeCustomerID, TypeName}
	var arena []byte
	var ends []int
	var tix []uint8
	for _, k := range perm {
		arena = append(arena, present[k]...)
		ends = append(ends, len(arena))
		for t, n := range typeNames {
			if n == types[k] {
				tix = append(tix, uint8(t))
			}
		}
	}
	var absArena []byte
	var absEnds []int
	for _, v := range absent {
		absArena = append(absArena, v...)
		absEnds = append(absEnds, len(absArena))
	}
	b.Run("present", func(b *testing.B) {
		i, start := 0, 0
		for b.Loop() {
			if i == len(ends) {
				i, start = 0, 0
			}
			if _, ok := x.Lookup(typeNames[tix[i]], arena[start:ends[i]]); !ok {
				b.Fatalf("%q not found", arena[start:ends[i]])
			}
			start = ends[i]
			i++
		}
	})
	// The first 1,024 keys over and over: index lines in cache.
	b.Run("hot", func(b *testing.B) {
		i, start := 0, 0
		for b.Loop() {
			if i == 1024 {
				i, start = 0, 0
			}
			if _, ok := x.Lookup(typeNames[tix[i]], arena[start:ends[i]]); !ok {
				b.Fatal("not found")
			}
			start = ends[i]
			i++
		}
	})
	b.Run("absent", func(b *testing.B) {
		i, start := 0, 0
		for b.Loop() {
			if i == len(absEnds) {
				i, start = 0, 0
			}
			if _, ok := x.Lookup(TypeEmail, absArena[start:absEnds[i]]); ok {
				b.Fatal("hit")
			}
			start = absEnds[i]
			i++
		}
	})
	// Batches of 16, as the Matcher looks up the candidates of one text:
	// fingerprint all, touch all (the cache misses overlap), then look up;
	// ns/op is per candidate.
	b.Run("batch16", func(b *testing.B) {
		var fps [16]uint64
		i, start := 0, 0
		var sink uint32
		for b.Loop() {
			k := i & 15
			if i == len(ends)&^15 {
				i, start, k = 0, 0, 0
			}
			if k == 0 {
				st := start
				for j := 0; j < 16; j++ {
					fps[j], _ = x.Fingerprint(typeNames[tix[i+j]], arena[st:ends[i+j]])
					st = ends[i+j]
				}
				for j := 0; j < 16; j++ {
					sink += x.Touch(fps[j])
				}
			}
			if _, ok := x.LookupFingerprint(fps[k]); !ok {
				b.Fatal("not found")
			}
			start = ends[i]
			i++
		}
		_ = sink
	})
	b.Run("normalize+lookup", func(b *testing.B) {
		raw := []byte("(415) 555-2671")
		for b.Loop() {
			x.LookupValue(TypePhone, raw)
		}
	})
}

// TestBuildMillionRows builds the 1 M-row index once and checks its size
// and speed budget loosely (the figures go to docs/BENCHMARKS.md from
// BenchmarkBuild); -short skips it, except under CI=true.
func TestBuildMillionRows(t *testing.T) {
	testenv.Long(t, "builds a 1 M-row index")
	start := time.Now()
	csv, x := bigIndex(t)
	el := time.Since(start)
	if x.Rows() != 1_000_000 {
		t.Fatalf("rows %d", x.Rows())
	}
	per := float64(x.MemoryBytes()-int64(x.Rows())*8) / float64(x.Len())
	if per > 16 {
		t.Errorf("%.1f bytes per identifier", per)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("1 M rows (%d MB CSV), %d identifiers: generated+built in %v, %.2f B/identifier + 8 B/row, %d MB index tables",
		len(csv)>>20, x.Len(), el.Round(time.Millisecond), per, x.MemoryBytes()>>20)
	// Spot checks.
	_, present, _ := lookupKeys(csv)
	if len(present) < 700_000 {
		t.Errorf("%d lookup keys", len(present))
	}
	for _, v := range []struct{ typ, val string }{{TypeCustomerID, "C-0999999"}, {TypeCustomerID, "c-0000000"}} {
		if _, ok := x.LookupValue(v.typ, []byte(v.val)); !ok {
			t.Errorf("%s %s not found", v.typ, v.val)
		}
	}
}

// BenchmarkMatch runs the Matcher on a ~3 KB message naming 8 customers
// of the 1 M-row index (e-mail, phone, name each) among other detections;
// ns/op is per message, scanning excluded.
//
//	go test ./pkg/edm -run '^$' -bench Match
func BenchmarkMatch(b *testing.B) {
	csv, x := bigIndex(b)
	lines := bytes.Split(csv, []byte("\n"))
	var sb bytes.Buffer
	sb.WriteString("Hi team, here are the accounts we discussed, plus our contact support@corp.example (415) 555-0100.\n")
	for k := 0; k < 8; k++ {
		f := bytes.Split(lines[1+k*99_991], []byte(","))
		fmt.Fprintf(&sb, "Customer %s %s <%s>, phone %s: called on 2024-03-%02d about order 7781%d, card ending 1111.\n", f[1], f[2], f[3], f[4], k+1, k)
	}
	sb.WriteString("Thanks, and see the attached report for the other 57 tickets.\n")
	text := sb.Bytes()
	m, sc := newTestMatcher(b, x)
	ds, _ := sc.Scan(text, nil)
	var res Match
	m.Match(text, ds, &res)
	if len(res.Rows) != 8 || res.ByType[TypeName] != 8 {
		b.Fatalf("rows %v by type %v", res.Rows, res.ByType)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Match(text, ds, &res)
	}
	b.ReportMetric(float64(len(ds)), "detections")
}
