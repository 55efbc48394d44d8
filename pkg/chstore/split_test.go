package chstore

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		want      []string
		wantErr   string
	}{
		{name: "one, no semicolon", sql: "CREATE TABLE a (x UInt8) ENGINE = Memory", want: []string{"CREATE TABLE a (x UInt8) ENGINE = Memory"}},
		{name: "semicolon lines", sql: "SELECT 1\n;\nSELECT 2\n;\n", want: []string{"SELECT 1", "SELECT 2"}},
		{name: "trailing semicolons", sql: "SELECT 1;\nSELECT 2;", want: []string{"SELECT 1", "SELECT 2"}},
		{name: "comments only dropped", sql: "-- header; with a semicolon\n/* block; */\n;\nSELECT 1;\n-- trailer\n", want: []string{"SELECT 1"}},
		{name: "semicolons in quotes", sql: "SELECT 'a;b', \"c;d\", `e;f`, 'it''s;', 'x\\';y'; SELECT 2", want: []string{"SELECT 'a;b', \"c;d\", `e;f`, 'it''s;', 'x\\';y'", "SELECT 2"}},
		{name: "leading comment kept", sql: "-- the table\nCREATE TABLE t;", want: []string{"-- the table\nCREATE TABLE t"}},
		{name: "empty", sql: " \n\t", want: nil},
		{name: "unterminated quote", sql: "SELECT 'abc", wantErr: "unterminated"},
		{name: "unterminated comment", sql: "SELECT 1 /* abc", wantErr: "unterminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitStatements(tc.sql)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestChecksumIgnoresLineEndings(t *testing.T) {
	lf, err := loadMigrations(fstest.MapFS{"0001_a.sql": {Data: []byte("SELECT 1\n;\nSELECT 2\n")}})
	if err != nil {
		t.Fatal(err)
	}
	crlf, err := loadMigrations(fstest.MapFS{"0001_a.sql": {Data: []byte("SELECT 1\r\n;\r\nSELECT 2\r\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if lf[0].checksum != crlf[0].checksum || !reflect.DeepEqual(lf[0].statements, crlf[0].statements) {
		t.Errorf("LF %s %q vs CRLF %s %q", lf[0].checksum, lf[0].statements, crlf[0].checksum, crlf[0].statements)
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name     string
		fs       fstest.MapFS
		versions []uint32
		wantErr  string
	}{
		{name: "sorted by number", fs: fstest.MapFS{"0010_c.sql": file("SELECT 1"), "0002_b.sql": file("SELECT 1"), "1_a.sql": file("SELECT 1"), "README.md": file("x")}, versions: []uint32{1, 2, 10}},
		{name: "duplicate version", fs: fstest.MapFS{"0001_a.sql": file("SELECT 1"), "1_b.sql": file("SELECT 1")}, wantErr: "same version 1"},
		{name: "bad name", fs: fstest.MapFS{"findings.sql": file("SELECT 1")}, wantErr: "NNNN_name.sql"},
		{name: "version zero", fs: fstest.MapFS{"0000_a.sql": file("SELECT 1")}, wantErr: "version must be"},
		{name: "bad sql", fs: fstest.MapFS{"0001_a.sql": file("SELECT 'x")}, wantErr: "unterminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMigrations(tc.fs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var vs []uint32
			for _, m := range ms {
				vs = append(vs, m.version)
			}
			if !reflect.DeepEqual(vs, tc.versions) {
				t.Fatalf("versions %v, want %v", vs, tc.versions)
			}
		})
	}
}
