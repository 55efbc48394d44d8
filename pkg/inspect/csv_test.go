package inspect

import (
	"fmt"
	"strings"
	"testing"
)

func TestScanCSV(t *testing.T) {
	s := newTestScanner(t, Config{
		AllowDomains: []string{"corp.example"},
		Custom:       []CustomDetector{{Name: "CUSTOMER_ID", Pattern: `\bC-\d{6}\b`, Keywords: []string{"customer"}}},
	})
	data := "Customer ID,Full Name,E-mail,Mobile,SSN,Card,Notes\r\n" +
		"C-000124,\"Smith, John\",j.smith@corp.example,(415) 555-2671,536-90-4399,\"4111 1111 1111 1111\",\"said \"\"hi\"\"\"\r\n" +
		"C-000123,Jane Doe,jane.doe@example.com,4155552671,536904399,4111111111111111,paid 2024\r\n" +
		"\r\n" +
		"C-000125,Wei Chen,wei@example.org,n/a,,,\r\n"
	ds, tab, trunc := s.ScanCSV([]byte(data), 0, nil)
	if trunc {
		t.Fatal("truncated")
	}
	checkInvariants(t, data, ds)
	if tab.Delimiter != "," || tab.Rows != 3 || tab.Columns != 7 {
		t.Errorf("tabular = %+v", tab)
	}
	wantCols := []TabularColumn{{0, "CUSTOMER_ID", 3}, {1, PersonName, 0}, {2, Email, 3}, {3, Phone, 2}, {4, SSN, 2}, {5, Card, 2}}
	if fmt.Sprint(tab.PIIColumns) != fmt.Sprint(wantCols) {
		t.Errorf("PII columns = %v, want %v", tab.PIIColumns, wantCols)
	}
	got := map[string]Confidence{}
	for i, d := range ds {
		if i > 0 && d.Start < ds[i-1].Start {
			t.Fatalf("not ordered by Start")
		}
		got[string(d.Type)+" "+data[d.Start:d.End]] = d.Confidence
	}
	want := map[string]Confidence{
		"CUSTOMER_ID C-000123":               High, // the header stands for the keyword
		"CUSTOMER_ID C-000124":               High,
		"CUSTOMER_ID C-000125":               High,
		"EMAIL_ADDRESS jane.doe@example.com": High,
		"EMAIL_ADDRESS j.smith@corp.example": Low, // internal stays Low
		"EMAIL_ADDRESS wei@example.org":      High,
		"PHONE_NUMBER 4155552671":            Medium, // bare: found only because of the header
		"PHONE_NUMBER (415) 555-2671":        High,   // Medium raised
		"US_SSN 536904399":                   Medium, // bare: header as keyword
		"US_SSN 536-90-4399":                 High,
		"CREDIT_CARD 4111111111111111":       High, // Medium raised
		"CREDIT_CARD 4111 1111 1111 1111":    High,
	}
	for k, c := range want {
		if got[k] != c {
			t.Errorf("%s: confidence %v, want %v", k, got[k], c)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d distinct detections %v, want %d", len(got), got, len(want))
	}

	// The same text without the header: plain detections only.
	plain := data[strings.Index(data, "\n")+1:]
	ds2, tab2, _ := s.ScanCSV([]byte(plain), 0, nil)
	if len(tab2.PIIColumns) != 0 {
		t.Errorf("headerless: PII columns %v", tab2.PIIColumns)
	}
	for _, d := range ds2 {
		if d.Type == Phone && plain[d.Start:d.End] == "4155552671" {
			t.Errorf("a bare number became a phone without a header")
		}
	}
}

func TestScanTSVAndDelimiters(t *testing.T) {
	s := newTestScanner(t, Config{})
	for _, c := range []struct {
		data  string
		delim string
	}{
		{"name\temail\tphone\nJane\tjane@example.com\t02079460958\n", "\t"},
		{"name;email;phone\nJane;jane@example.com;02079460958\n", ";"},
		{"name|email|phone\nJane|jane@example.com|02079460958", "|"},
		{"email\njane@example.com\n", ","},
	} {
		ds, tab, _ := s.ScanCSV([]byte(c.data), 0, nil)
		if tab.Delimiter != c.delim || tab.Rows != 1 {
			t.Errorf("%q: %+v", c.data, tab)
		}
		if len(ds) == 0 || ds[0].Type != Email || ds[0].Confidence != High {
			t.Errorf("%q: %v", c.data, ds)
		}
		if c.delim != "," && (len(ds) != 2 || ds[1].Type != Phone || c.data[ds[1].Start:ds[1].End] != "02079460958") {
			t.Errorf("%q: phone column not found: %v", c.data, ds)
		}
	}
}

func TestLooksLikeCSV(t *testing.T) {
	s := newTestScanner(t, Config{})
	for in, want := range map[string]bool{
		"email,phone\na@example.com,123\n":           true,
		"id\tEmail Address\n1\tx@example.com\n":      true,
		"Hello, world\nhow are you, today\n":         false, // no PII header
		"email,phone\na@example.com\n":               false, // field counts differ
		"Dear customer, your email, phone and card.": false,
	} {
		if _, got := s.looksLikeCSV([]byte(in)); got != want {
			t.Errorf("looksLikeCSV(%q) = %v", in, got)
		}
	}
}

func TestCSVReaderQuotes(t *testing.T) {
	in := "a,\"b,\"\"c\"\"\",\"unterminated\nx\",d\r\n\"q\"junk,e"
	r := csvReader{b: []byte(in), delim: ','}
	var cells []string
	for {
		st, en, endRow, ok := r.next()
		if !ok {
			break
		}
		c := in[st:en]
		if endRow {
			c += "|"
		}
		cells = append(cells, c)
	}
	want := []string{"a", `b,""c""`, "unterminated\nx", "d|", "q", "e|"}
	if fmt.Sprint(cells) != fmt.Sprint(want) {
		t.Errorf("cells %q, want %q", cells, want)
	}
}
