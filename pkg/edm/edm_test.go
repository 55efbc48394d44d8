package edm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/privacy"
)

var (
	testKey  = []byte("leakline-test-key-0123456789abcdef")
	otherKey = []byte("another-test-key-0123456789abcdef!")
)

const customersCSV = "Customer ID,First Name,Last Name,Email,Phone,Notes\n" +
	"C-000001,Jane,Doe,Jane.Doe@Example.com,(415) 555-2671,vip\n" +
	"C-000002,John,Smith,john.smith@example.org,020 7946 0958,\n" +
	"C-000003,Mary Ann,Smith,mary@example.net,+61 412 345 678,\n" +
	"C-000004,Wei,Chen,wei.chen@example.com,not a phone,\n" +
	",Nobody,Here,nobody@example.com,,no id: skipped\n" +
	"C-000005,Olga,Ivanova,,4155550000,\n" +
	"C-000006,Sam,Lee,shared@example.com,,\n" +
	"C-000007,Priya,Patel,shared@example.com,,\n"

var testColumns = map[string]string{
	"first name": TypeFirstName, "last name": TypeLastName, "email": TypeEmail, "phone": TypePhone, "customer id": TypeCustomerID,
}

func buildTest(t testing.TB, csv string) *Index {
	t.Helper()
	x, err := Build(strings.NewReader(csv), BuildOptions{Columns: testColumns, IDColumn: "Customer ID", Created: time.Unix(1700000000, 0)}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestBuildAndLookup(t *testing.T) {
	x := buildTest(t, customersCSV)
	in := x.Info()
	if in.Rows != 7 || in.RowsSkipped != 1 {
		t.Errorf("rows %d skipped %d", in.Rows, in.RowsSkipped)
	}
	got := map[string]string{}
	for _, ti := range in.Types {
		got[ti.Name] = fmt.Sprintf("%d/%d", ti.Identifiers, ti.Skipped)
	}
	// Names: 7 two-word names plus "mary smith" for "Mary Ann Smith".
	want := map[string]string{"customer_id": "7/0", "email": "6/1", "name": "8/0", "phone": "4/3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("types %v, want %v", got, want)
	}
	if in.Identifiers != int64(x.Len()) || x.Len() != 25 {
		t.Errorf("identifiers %d / %d", in.Identifiers, x.Len())
	}
	for _, c := range []struct {
		typ, value string
		row        uint32
		ok         bool
	}{
		{"email", "jane.doe@example.com", 0, true},
		{"email", "JANE.DOE@EXAMPLE.COM", 0, true},
		{"email", "ｊａｎｅ．ｄｏｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", 0, true},
		{"phone", "+1 415-555-2671", 0, true},
		{"phone", "4155552671", 0, true},
		{"phone", "+44 20 7946 0958", 1, true},
		{"phone", "0412 345 678", 2, true},
		{"name", "JANE  DOE", 0, true},
		{"name", "Mary Ann Smith", 2, true},
		{"name", "Mary Smith", 2, true},
		{"name", "Ann Smith", 0, false},
		{"customer_id", "c-000003", 2, true},
		{"email", "nobody@example.com", 0, false},
		{"email", "shared@example.com", 5, true},
		{"ssn", "536-90-4399", 0, false},
	} {
		row, ok := x.LookupValue(c.typ, []byte(c.value))
		if ok != c.ok || (ok && row != c.row) {
			t.Errorf("Lookup(%s, %q) = %d, %v; want %d, %v", c.typ, c.value, row, ok, c.row, c.ok)
		}
	}
	norm, _ := Normalize(TypeEmail, []byte("shared@example.com"), nil)
	if rows := x.LookupAll(TypeEmail, norm, nil); fmt.Sprint(rows) != "[5 6]" {
		t.Errorf("LookupAll = %v", rows)
	}
	// Customer fingerprints.
	fp := x.FingerprintID(" c-000002 ")
	if fp == 0 || x.CustomerFingerprint(1) != fp || x.CustomerFingerprint(0) == fp {
		t.Errorf("customer fingerprints do not line up")
	}
	f, err := NewIDFingerprinter(testKey)
	if err != nil || f.FingerprintID("C-000002") != fp {
		t.Errorf("IDFingerprinter differs")
	}
	if x.FingerprintID("") != 0 {
		t.Errorf("empty id has a fingerprint")
	}
	// Same export and key: same id; another key: another id and no hits.
	if y := buildTest(t, customersCSV); y.ID() != x.ID() {
		t.Errorf("ids differ for the same input")
	}
	y, err := Build(strings.NewReader(customersCSV), BuildOptions{Columns: testColumns, IDColumn: "Customer ID"}, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	if y.ID() == x.ID() || y.FingerprintID("C-000002") == fp {
		t.Errorf("another key gives the same fingerprints")
	}
}

// TestNoRawValues checks that neither the index file nor its info holds
// any of the raw or normalized values.
func TestNoRawValues(t *testing.T) {
	x := buildTest(t, customersCSV)
	b, err := x.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	info := fmt.Sprintf("%+v", x.Info())
	for _, v := range []string{"jane", "Jane", "doe", "example", "C-000001", "000001", "4155552671", "2671", "smith", "7946"} {
		if bytes.Contains(b, []byte(v)) || strings.Contains(info, v) {
			t.Errorf("index holds %q", v)
		}
	}
}

func TestFileRoundTrip(t *testing.T) {
	x := buildTest(t, customersCSV)
	var buf bytes.Buffer
	n, err := x.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v (buffer %d)", n, err, buf.Len())
	}
	data := buf.Bytes()
	y, err := Load(bytes.NewReader(data), testKey)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(y.Info()) != fmt.Sprint(x.Info()) {
		t.Errorf("info\n%+v\nwant\n%+v", y.Info(), x.Info())
	}
	for _, v := range []string{"jane.doe@example.com", "john.smith@example.org"} {
		a, oka := x.LookupValue(TypeEmail, []byte(v))
		b, okb := y.LookupValue(TypeEmail, []byte(v))
		if a != b || !oka || !okb {
			t.Errorf("%s: %d %v / %d %v", v, a, oka, b, okb)
		}
	}
	info, size, err := ReadInfo(bytes.NewReader(data))
	if err != nil || size != int64(len(data)) || info.ID != x.ID() {
		t.Errorf("ReadInfo = %+v, %d, %v", info, size, err)
	}
	if _, err := Load(bytes.NewReader(data), otherKey); !errors.Is(err, errKey) {
		t.Errorf("wrong key: %v", err)
	}
	// Every single-byte change and every truncation fails cleanly.
	for i := 0; i < len(data); i++ {
		bad := bytes.Clone(data)
		bad[i] ^= 0x41
		if _, err := Load(bytes.NewReader(bad), testKey); err == nil {
			t.Fatalf("byte %d changed: loaded", i)
		}
		if _, err := Load(bytes.NewReader(data[:i]), testKey); err == nil {
			t.Fatalf("truncated to %d: loaded", i)
		}
	}
	if _, err := Load(bytes.NewReader(append(bytes.Clone(data), 0)), testKey); err == nil {
		t.Error("trailing byte: loaded")
	}
}

func TestBuildErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		csv  string
		opt  BuildOptions
		key  []byte
	}{
		{"short key", customersCSV, BuildOptions{Columns: testColumns, IDColumn: "customer id"}, []byte("short")},
		{"no id column", customersCSV, BuildOptions{Columns: testColumns}, testKey},
		{"missing id column", customersCSV, BuildOptions{Columns: testColumns, IDColumn: "id"}, testKey},
		{"missing column", customersCSV, BuildOptions{Columns: map[string]string{"mail": "email"}, IDColumn: "customer id"}, testKey},
		{"bad type", customersCSV, BuildOptions{Columns: map[string]string{"email": "E-Mail"}, IDColumn: "customer id"}, testKey},
		{"first without last", customersCSV, BuildOptions{Columns: map[string]string{"first name": "first_name"}, IDColumn: "customer id"}, testKey},
		{"no columns", customersCSV, BuildOptions{IDColumn: "customer id"}, testKey},
		{"empty", "", BuildOptions{Columns: testColumns, IDColumn: "customer id"}, testKey},
	} {
		if _, err := Build(strings.NewReader(c.csv), c.opt, c.key); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ typ, in, want string }{
		{TypeName, "  JANE   van der BERG ", "jane van der berg"},
		{TypeName, "Dr. JANE O’Brien-Smith", "dr jane o'brien-smith"},
		{TypeName, "Zoë  Ünal", "zoë ünal"},
		{TypeName, "Ｊａｎｅ　Ｄｏｅ", "jane doe"},
		{TypeName, "Jo\u200bhn Smith", "john smith"},
		{TypeName, "Cher", ""},
		{TypeName, "- -", ""},
		{TypeCustomerID, " c-000\u200b123 ", "C-000123"},
		{TypeCustomerID, "   ", ""},
		{TypeEmail, "Jane.Doe@Example.COM", "jane.doe@example.com"},
		{TypePhone, "020 7946 0958", "+442079460958"},
	} {
		got, ok := Normalize(c.typ, []byte(c.in), nil)
		if (c.want == "") == ok || string(got) != c.want && ok {
			t.Errorf("Normalize(%s, %q) = %q, %v; want %q", c.typ, c.in, got, ok, c.want)
		}
	}
}

// TestScannerAgreement checks that what the scanner finds in text looks
// up exactly like what Build normalized from the export.
func TestScannerAgreement(t *testing.T) {
	x := buildTest(t, customersCSV)
	tok, _ := privacy.NewTokenizer(testKey)
	sc, err := inspect.New(inspect.Config{}, tok)
	if err != nil {
		t.Fatal(err)
	}
	text := "write to JANE.DOE@example.com or call +1 (415) 555-2671; John: 020-7946-0958? no: +44 20 7946 0958, mary@example.net"
	ds, _ := sc.ScanString(text, nil)
	found := map[string]uint32{}
	for _, d := range ds {
		it := DefaultTypes[d.Type]
		if row, ok := x.LookupValue(it, []byte(text[d.Start:d.End])); ok {
			found[text[d.Start:d.End]] = row
		}
	}
	want := map[string]uint32{"JANE.DOE@example.com": 0, "+1 (415) 555-2671": 0, "020-7946-0958": 1, "+44 20 7946 0958": 1, "mary@example.net": 2}
	if fmt.Sprint(found) != fmt.Sprint(want) {
		t.Errorf("found %v, want %v", found, want)
	}
}

func newTestMatcher(t testing.TB, x *Index) (*Matcher, *inspect.Scanner) {
	t.Helper()
	m, err := NewMatcher(x, MatcherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := privacy.NewTokenizer(testKey)
	sc, err := inspect.New(inspect.Config{Custom: []inspect.CustomDetector{{Name: "CUSTOMER_ID", Pattern: `\bC-\d{6}\b`}}}, tok)
	if err != nil {
		t.Fatal(err)
	}
	return m, sc
}

func TestMatcher(t *testing.T) {
	x := buildTest(t, customersCSV)
	m, sc := newTestMatcher(t, x)
	filler := strings.Repeat("lorem ipsum dolor sit amet ", 20) // 540 bytes
	cases := []struct {
		name   string
		text   string
		rows   string
		byType string
	}{
		{"email and name", "Customer Jane Doe <jane.doe@example.com> wrote", "[0]", "map[email:1 name:1]"},
		{"name alone", "Jane Doe wrote to us", "[]", "map[]"},
		{"name of another row", "John Smith, jane.doe@example.com", "[0]", "map[email:1]"},
		{"name too far", "Jane Doe " + filler + " jane.doe@example.com", "[0]", "map[email:1]"},
		{"name after", "jane.doe@example.com " + strings.Repeat("x", 200) + " JANE DOE", "[0]", "map[email:1 name:1]"},
		{"three-word name", "Dear Mary Ann Smith, your mail mary@example.net", "[2]", "map[email:1 name:1]"},
		{"first and last", "Mary Smith: +61 412 345 678", "[2]", "map[name:1 phone:1]"},
		{"two customers", "C-000002 and (415) 555-2671 and john.smith@example.org", "[0 1]", "map[customer_id:1 email:1 phone:1]"},
		{"shared mailbox", "shared@example.com", "[5 6]", "map[email:1]"},
		{"unknown", "nobody@example.com 4111 1111 1111 1111", "[]", "map[]"},
		{"lower-case name", "jane doe jane.doe@example.com", "[0]", "map[email:1]"},
		{"name across lines", "Jane\nDoe jane.doe@example.com", "[0]", "map[email:1]"},
	}
	var res Match
	for _, c := range cases {
		ds, _ := sc.ScanString(c.text, nil)
		m.MatchString(c.text, ds, &res)
		if fmt.Sprint(res.Rows) != c.rows && !(len(res.Rows) == 0 && c.rows == "[]") || fmt.Sprint(res.ByType) != c.byType {
			t.Errorf("%s: rows %v by type %v; want %s %s", c.name, res.Rows, res.ByType, c.rows, c.byType)
		}
	}
	// Allocation-light: a warmed-up Match allocates nothing.
	text := "Customer Jane Doe <jane.doe@example.com>, John Smith 020 7946 0958"
	ds, _ := sc.ScanString(text, nil)
	tb := []byte(text)
	m.Match(tb, ds, &res)
	if a := testing.AllocsPerRun(100, func() { m.Match(tb, ds, &res) }); a != 0 {
		t.Errorf("Match allocates %.1f times", a)
	}
	// Max rows per value.
	m2, _ := NewMatcher(x, MatcherOptions{MaxRowsPerValue: 1})
	ds, _ = sc.ScanString("shared@example.com", nil)
	m2.MatchString("shared@example.com", ds, &res)
	if len(res.Rows) != 0 {
		t.Errorf("a shared value counted: %v", res.Rows)
	}
}

// genCSV writes an export of n customers (deterministic): names from
// 400 first names and 8,000 last names (so that some repeat, as in a real
// CRM), unique e-mails, NANP and UK phones.
func genCSV(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	syl := []string{"an", "bel", "car", "dor", "el", "fin", "gar", "hal", "is", "jor", "kel", "lin", "mar", "nor", "ol", "per", "quin", "ros", "sil", "tam"}
	name := func(parts int) string {
		var b strings.Builder
		for k := 0; k < parts; k++ {
			b.WriteString(syl[rng.IntN(len(syl))])
		}
		s := b.String()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	var b bytes.Buffer
	b.Grow(n * 90)
	b.WriteString("customer_id,first_name,last_name,email,phone,city\n")
	for i := 0; i < n; i++ {
		f, l := name(2), name(3)
		fmt.Fprintf(&b, "C-%07d,%s,%s,%s.%s%d@example.com,", i, f, l, strings.ToLower(f), strings.ToLower(l), i)
		if i%2 == 0 {
			fmt.Fprintf(&b, "(%d%02d) %d%02d-%04d", 2+rng.IntN(8), rng.IntN(90), 2+rng.IntN(8), 20+rng.IntN(80), rng.IntN(10000))
		} else {
			fmt.Fprintf(&b, "+44 20 7%03d %04d", rng.IntN(1000), rng.IntN(10000))
		}
		b.WriteString(",Springfield\n")
	}
	return b.Bytes()
}

var genColumns = map[string]string{"customer_id": TypeCustomerID, "first_name": TypeFirstName, "last_name": TypeLastName, "email": TypeEmail, "phone": TypePhone}
