package clicmd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/leakline/leakline/pkg/config"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/privacy"
)

const inspectUsage = `usage: leakline inspect [flags] [FILE…]

Reads text from each FILE ("-" or none: stdin) and prints one JSON line per
detection:

  {"type":"EMAIL_ADDRESS","start":5,"end":25,"confidence":"high","masked":"j***@example.com","token":"…"}

start and end are byte offsets into the input (for a MIME message: into the
decoded part named by "part"). Masked values and keyed tokens only — never
the raw value. A file's format (plain text, CSV/TSV, an e-mail message) is
taken from --format, else its name, else its content; binary input is
reported on stderr and not scanned.

With --jsonl each input line is an object {"id":…,"text":"…"} and each
detection line carries its "id". With --edm INDEX, each input also gets a
line {"edm":{"customers":N,"by_type":{…}}} counting the index's customers
found in it (a full name counts only near another identifier of the same
customer).

flags:
`

// inspectOut is one detection line.
type inspectOut struct {
	Type       inspect.Type       `json:"type"`
	Start      int                `json:"start"`
	End        int                `json:"end"`
	Confidence inspect.Confidence `json:"confidence"`
	Masked     string             `json:"masked"`
	Token      string             `json:"token"`
	ID         json.RawMessage    `json:"id,omitempty"`
	File       string             `json:"file,omitempty"`
	Part       string             `json:"part,omitempty"`
}

// edmOut is the per-input EDM line.
type edmOut struct {
	ID   json.RawMessage `json:"id,omitempty"`
	File string          `json:"file,omitempty"`
	EDM  edmCounts       `json:"edm"`
}

type edmCounts struct {
	Customers int            `json:"customers"`
	ByType    map[string]int `json:"by_type"`
}

// inspector holds what one run of the inspect command needs.
type inspector struct {
	sc      *inspect.Scanner
	matcher *edm.Matcher
	minConf inspect.Confidence
	format  inspect.Format
	limit   int // bytes read per input
	enc     *json.Encoder
	stderr  io.Writer

	res  edm.Match
	rows []uint32
	by   map[string]int
}

// Inspect implements "leakline inspect". See inspectUsage.
func Inspect(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, inspectUsage)
		fs.PrintDefaults()
	}
	edmPath := fs.String("edm", "", "exact-data-match `INDEX` file (needs the key it was built with)")
	keyFile := fs.String("key-file", "", "HMAC key `file` (hex or raw, ≥ 32 bytes); default: a random per-run key")
	jsonl := fs.Bool("jsonl", false, `input is JSON lines {"id":…,"text":"…"}`)
	minConf := fs.String("min-confidence", "low", "print detections of at least this `confidence`: low, medium or high")
	format := fs.String("format", "auto", "input `format`: auto, text, mime, csv or tsv")
	maxBytes := fs.Int("max-bytes", inspect.DefaultMaxScanBytes, "inspect at most this many (decoded) `bytes` per input")
	domains := fs.String("company-domains", "", "comma-separated company mail `domains` (their addresses are low confidence)")
	var custom listFlag
	fs.Var(&custom, "custom", "custom detector `NAME=REGEX` (repeatable), e.g. CUSTOMER_ID='\\bC-\\d{6}\\b'")
	files, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}

	var conf inspect.Confidence
	if err := conf.UnmarshalText([]byte(*minConf)); err != nil {
		return usageError(fs, stderr, "--min-confidence: %v", err)
	}
	f, err := inspect.ParseFormat(*format)
	if err != nil {
		return usageError(fs, stderr, "--format: %v", err)
	}
	if *maxBytes <= 0 {
		return usageError(fs, stderr, "--max-bytes must be positive")
	}
	cfg := inspect.Config{AllowDomains: config.SplitList(*domains), MaxScanBytes: *maxBytes}
	for _, c := range custom {
		name, pattern, ok := strings.Cut(c, "=")
		if !ok {
			return usageError(fs, stderr, "--custom %q: want NAME=REGEX", c)
		}
		cfg.Custom = append(cfg.Custom, inspect.CustomDetector{Name: strings.TrimSpace(name), Pattern: pattern})
	}

	var key []byte
	if *keyFile != "" {
		if key, err = privacy.LoadKey(*keyFile); err != nil {
			fmt.Fprintln(stderr, "leakline inspect:", err)
			return ExitError
		}
	} else {
		if *edmPath != "" {
			return usageError(fs, stderr, "--edm needs --key-file: the key the index was built with")
		}
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			fmt.Fprintln(stderr, "leakline inspect:", err)
			return ExitError
		}
		fmt.Fprintln(stderr, "leakline inspect: no --key-file: tokens use a random per-run key (not comparable across runs)")
	}
	tok, err := privacy.NewTokenizer(key)
	if err != nil {
		fmt.Fprintln(stderr, "leakline inspect:", err)
		return ExitError
	}
	sc, err := inspect.New(cfg, tok)
	if err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	in := &inspector{sc: sc, minConf: conf, format: f, limit: readLimit(*maxBytes), enc: enc, stderr: stderr}
	if *edmPath != "" {
		idx, err := loadIndex(*edmPath, key)
		if err != nil {
			fmt.Fprintln(stderr, "leakline inspect:", err)
			return ExitError
		}
		if in.matcher, err = edm.NewMatcher(idx, edm.MatcherOptions{}); err != nil {
			fmt.Fprintln(stderr, "leakline inspect:", err)
			return ExitError
		}
	}

	if len(files) == 0 {
		files = []string{"-"}
	}
	status := ExitOK
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			fmt.Fprintln(stderr, "leakline inspect:", err)
			return ExitError
		}
		if err := in.input(ctx, name, stdin, *jsonl); err != nil {
			fmt.Fprintln(stderr, "leakline inspect:", err)
			status = ExitError
		}
		if err := out.Flush(); err != nil {
			fmt.Fprintln(stderr, "leakline inspect: write:", err)
			return ExitError
		}
	}
	return status
}

// input inspects one named input ("-": stdin).
func (in *inspector) input(ctx context.Context, name string, stdin io.Reader, jsonl bool) error {
	r, label := stdin, ""
	if name != "-" {
		fh, err := os.Open(name)
		if err != nil {
			return err
		}
		defer fh.Close()
		r, label = fh, name
	}
	if jsonl {
		return in.jsonLines(ctx, r, label)
	}
	return in.whole(r, label)
}

// readLimit is how much of one input is read: MIME and UTF-16 bodies are
// larger than the text they decode to.
func readLimit(maxBytes int) int {
	if maxBytes > (1<<31)/8 {
		return 1 << 31
	}
	return 8 * maxBytes
}

func loadIndex(path string, key []byte) (*edm.Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return edm.Load(bufio.NewReaderSize(f, 1<<20), key)
}

// whole inspects one input read whole (up to the read limit).
func (in *inspector) whole(r io.Reader, file string) error {
	data, err := io.ReadAll(io.LimitReader(r, int64(in.limit)+1))
	if err != nil {
		return err
	}
	name := file
	if name == "" {
		name = "stdin"
	}
	if len(data) > in.limit {
		data = data[:in.limit]
		fmt.Fprintf(in.stderr, "leakline inspect: %s: longer than %d bytes: only the first %d were read\n", name, in.limit, in.limit)
	}
	return in.inspect(data, nil, file, name)
}

// jsonLines inspects each {"id","text"} line of r.
func (in *inspector) jsonLines(ctx context.Context, r io.Reader, file string) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var bad int
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, tooLong, err := readLine(br, in.limit+1024)
		if err != nil && err != io.EOF {
			return err
		}
		where := fmt.Sprintf("line %d", lineNo)
		if file != "" {
			where = file + ":" + where
		}
		switch {
		case tooLong:
			fmt.Fprintf(in.stderr, "leakline inspect: %s: longer than %d bytes, skipped\n", where, in.limit+1024)
			bad++
		case len(bytes.TrimSpace(line)) > 0:
			// Invalid UTF-8 bytes are removed, as the pipeline's
			// normalizer does: encoding/json would turn each into U+FFFD,
			// which splits a value and hides it.
			if !utf8.Valid(line) {
				line = []byte(strings.ToValidUTF8(string(line), ""))
			}
			var obj struct {
				ID   json.RawMessage `json:"id"`
				Text *string         `json:"text"`
			}
			if jerr := json.Unmarshal(line, &obj); jerr != nil || obj.Text == nil {
				if jerr == nil {
					jerr = errors.New(`no "text"`)
				}
				fmt.Fprintf(in.stderr, "leakline inspect: %s: %v\n", where, jerr)
				bad++
			} else {
				id := obj.ID
				if len(id) == 0 || string(id) == "null" {
					id = nil
				} else {
					var c bytes.Buffer
					if json.Compact(&c, id) == nil {
						id = c.Bytes()
					}
				}
				if ierr := in.inspect([]byte(*obj.Text), id, file, where); ierr != nil {
					return ierr
				}
			}
		}
		if err == io.EOF {
			break
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d input lines could not be read", bad)
	}
	return nil
}

// readLine reads one line (without its line break) of at most max bytes;
// a longer line is consumed and reported with tooLong.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		return line, tooLong, err
	}
}

// inspect scans one input and prints its lines.
func (in *inspector) inspect(data []byte, id json.RawMessage, file, name string) error {
	if in.matcher != nil {
		in.rows = in.rows[:0]
		if in.by == nil {
			in.by = map[string]int{}
		}
		clear(in.by)
	}
	var werr error
	res := in.sc.Inspect(data, inspect.InspectOptions{
		Format:   in.format,
		FileName: file,
		OnText: func(part string, text []byte, ds []inspect.Detection) {
			for _, d := range ds {
				if d.Confidence < in.minConf {
					continue
				}
				o := inspectOut{Type: d.Type, Start: d.Start, End: d.End, Confidence: d.Confidence, Masked: d.Masked, Token: d.Token, ID: id, File: file, Part: part}
				if err := in.enc.Encode(o); err != nil && werr == nil {
					werr = err
				}
			}
			if in.matcher != nil {
				in.matcher.Match(text, ds, &in.res)
				in.rows = append(in.rows, in.res.Rows...)
				for t, n := range in.res.ByType {
					in.by[t] += n
				}
			}
		},
	}, nil)
	if werr != nil {
		return fmt.Errorf("write: %w", werr)
	}
	switch {
	case res.Format == inspect.FormatBinary:
		fmt.Fprintf(in.stderr, "leakline inspect: %s: binary content, not scanned\n", name)
	case res.Truncated:
		fmt.Fprintf(in.stderr, "leakline inspect: %s: inspected up to the cap (%d bytes scanned)\n", name, res.Scanned)
	}
	for _, p := range res.Parts {
		if p.Skipped != "" {
			fmt.Fprintf(in.stderr, "leakline inspect: %s: part %s skipped: %s\n", name, p.Path, p.Skipped)
		}
	}
	if in.matcher != nil {
		slices.Sort(in.rows)
		n := len(slices.Compact(in.rows))
		by := make(map[string]int, len(in.by))
		for t, c := range in.by {
			by[t] = c
		}
		if err := in.enc.Encode(edmOut{ID: id, File: file, EDM: edmCounts{Customers: n, ByType: by}}); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}
