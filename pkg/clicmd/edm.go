package clicmd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/leakline/leakline/pkg/config"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/privacy"
)

const edmUsage = `usage: leakline edm <command> [flags]

commands:
  build    build an exact-data-match index from a CRM export (CSV with a header row)
             leakline edm build --key-file KEY --columns email=email,phone=phone,name=name \
               --id-column customer_id -o INDEX [customers.csv]
  publish  publish an index to a compacted Kafka topic, in chunks
             leakline edm publish INDEX --brokers host:9092 [--topic dlp.edm]
  info     verify an index file and describe it (no key needed)
             leakline edm info INDEX
`

// EDM implements "leakline edm build|publish|info".
func EDM(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, edmUsage)
		return ExitUsage
	}
	switch args[0] {
	case "build":
		return edmBuild(args[1:], stdin, stdout, stderr)
	case "publish":
		return edmPublish(ctx, args[1:], stdout, stderr)
	case "info":
		return edmInfo(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, edmUsage)
		return ExitOK
	}
	fmt.Fprintf(stderr, "leakline edm: unknown command %q\n\n%s", args[0], edmUsage)
	return ExitUsage
}

// parseColumns parses "csvcol=type,csvcol2=type2"; "email" alone means
// "email=email".
func parseColumns(s string) (map[string]string, error) {
	cols := map[string]string{}
	for _, item := range config.SplitList(s) {
		col, typ, ok := strings.Cut(item, "=")
		col, typ = strings.TrimSpace(col), strings.TrimSpace(typ)
		if !ok {
			typ = col
		}
		if col == "" || typ == "" {
			return nil, fmt.Errorf("bad column %q: want CSVCOLUMN=TYPE", item)
		}
		if _, dup := cols[col]; dup {
			return nil, fmt.Errorf("column %q given twice", col)
		}
		cols[col] = typ
	}
	if len(cols) == 0 {
		return nil, errors.New("no columns")
	}
	return cols, nil
}

func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// buildSummary is printed after a build.
type buildSummary struct {
	edm.Info
	File        string  `json:"file"`
	Bytes       int64   `json:"bytes"`
	MemoryBytes int64   `json:"memory_bytes"`
	Seconds     float64 `json:"seconds"`
}

func edmBuild(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("edm build", "usage: leakline edm build --key-file KEY --columns COL=TYPE,… --id-column COL -o INDEX [CSV]\n\n"+
		"Builds an index of keyed fingerprints (no raw value) of the named columns of a\n"+
		"CSV export with a header row (CSV \"-\" or none: stdin). Types: email, phone,\n"+
		"name, first_name + last_name, card, ssn, iban, nino, or any other name\n"+
		"(customer_id, …) for opaque identifiers. Prints a JSON summary.\n\nflags:\n", stderr)
	keyFile := fs.String("key-file", "", "HMAC key `file` (hex or raw, ≥ 32 bytes); required")
	columns := fs.String("columns", "", "`COL=TYPE,…` columns to index; required")
	idColumn := fs.String("id-column", "", "customer id `column` (the CRM record id); required")
	outPath := fs.String("o", "", "index `file` to write (\"-\": stdout); required")
	comma := fs.String("comma", ",", "field separator: one character, or \"tab\"")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	switch {
	case *keyFile == "":
		return usageError(fs, stderr, "--key-file is required")
	case *idColumn == "":
		return usageError(fs, stderr, "--id-column is required")
	case *outPath == "":
		return usageError(fs, stderr, "-o is required")
	case len(pos) > 1:
		return usageError(fs, stderr, "one CSV file at most")
	}
	cols, err := parseColumns(*columns)
	if err != nil {
		return usageError(fs, stderr, "--columns: %v", err)
	}
	var sep rune
	switch c := []rune(*comma); {
	case *comma == "tab" || *comma == `\t`:
		sep = '\t'
	case len(c) == 1:
		sep = c[0]
	default:
		return usageError(fs, stderr, "--comma %q: one character or \"tab\"", *comma)
	}
	key, err := privacy.LoadKey(*keyFile)
	if err != nil {
		fmt.Fprintln(stderr, "leakline edm build:", err)
		return ExitError
	}
	in, name := stdin, "stdin"
	if len(pos) == 1 && pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			fmt.Fprintln(stderr, "leakline edm build:", err)
			return ExitError
		}
		defer f.Close()
		in, name = f, pos[0]
	}
	start := time.Now()
	idx, err := edm.Build(bufio.NewReaderSize(in, 1<<20), edm.BuildOptions{Columns: cols, IDColumn: *idColumn, Comma: sep}, key)
	if err != nil {
		fmt.Fprintf(stderr, "leakline edm build: %s: %v\n", name, err)
		return ExitError
	}
	sum := buildSummary{Info: idx.Info(), File: *outPath, MemoryBytes: idx.MemoryBytes()}
	summaryOut := stdout
	if *outPath == "-" {
		summaryOut = stderr
		w := bufio.NewWriterSize(stdout, 1<<20)
		if sum.Bytes, err = idx.WriteTo(w); err == nil {
			err = w.Flush()
		}
	} else {
		sum.Bytes, err = writeFileAtomic(*outPath, idx.WriteTo)
	}
	if err != nil {
		fmt.Fprintln(stderr, "leakline edm build:", err)
		return ExitError
	}
	sum.Seconds = time.Since(start).Round(time.Millisecond).Seconds()
	enc := json.NewEncoder(summaryOut)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sum); err != nil {
		fmt.Fprintln(stderr, "leakline edm build:", err)
		return ExitError
	}
	return ExitOK
}

// writeFileAtomic writes path through a temporary file in the same
// directory, renamed into place once complete.
func writeFileAtomic(path string, write func(io.Writer) (int64, error)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	n, err := write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return n, err
}

func edmPublish(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("edm publish", "usage: leakline edm publish INDEX --brokers HOST:PORT[,…] [--topic dlp.edm]\n\n"+
		"Verifies INDEX and writes it in chunks to partition 0 of a compacted topic\n"+
		"(created if missing); detectors load the newest complete version. Older\n"+
		"versions beyond --keep are deleted with tombstones. Prints a JSON summary.\n\nflags:\n", stderr)
	brokers := fs.String("brokers", "", "comma-separated bootstrap `brokers` host:port; required")
	topic := fs.String("topic", edm.DefaultTopic, "`topic` to publish to")
	chunk := fs.Int("chunk-size", edm.DefaultChunkSize, "`bytes` per message (1 KiB – 900 KiB)")
	keep := fs.Int("keep", edm.DefaultKeep, "versions to keep, this one included (negative: all)")
	clientID := fs.String("client-id", kafkaio.DefaultClientID, "Kafka client `id`")
	sec := config.RegisterKafkaSecurity(fs, os.Getenv)
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this `duration`")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want exactly one INDEX file")
	}
	cfg := kafkaio.Config{Brokers: config.SplitList(*brokers), ClientID: *clientID}
	if err := cfg.Validate(); err != nil {
		return usageError(fs, stderr, "--brokers: %v", err)
	}
	if err := sec.Apply(&cfg); err != nil {
		return usageError(fs, stderr, "Kafka security: %v", err)
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, "leakline edm publish:", err)
		return ExitError
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := edm.Publish(ctx, cfg, *topic, data, edm.PublishOptions{ChunkSize: *chunk, Keep: *keep})
	if err != nil {
		fmt.Fprintln(stderr, "leakline edm publish:", err)
		return ExitError
	}
	out := struct {
		edm.PublishResult
		Topic string `json:"topic"`
	}{res, *topic}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		fmt.Fprintln(stderr, "leakline edm publish:", err)
		return ExitError
	}
	return ExitOK
}

func edmInfo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("edm info", "usage: leakline edm info INDEX\n\nVerifies INDEX (format, checksum) and prints its description as JSON.\n", stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want exactly one INDEX file")
	}
	f, err := os.Open(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, "leakline edm info:", err)
		return ExitError
	}
	defer f.Close()
	info, n, err := edm.ReadInfo(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		fmt.Fprintf(stderr, "leakline edm info: %s: %v\n", pos[0], err)
		return ExitError
	}
	out := struct {
		edm.Info
		Bytes int64 `json:"bytes"`
	}{info, n}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		fmt.Fprintln(stderr, "leakline edm info:", err)
		return ExitError
	}
	return ExitOK
}
