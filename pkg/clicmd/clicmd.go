// Package clicmd implements leakline's content-inspection commands — the
// functions services/leakline's main calls:
//
//	leakline inspect [flags] [FILE…]              detections as JSON lines
//	leakline edm build [flags] -o INDEX [CSV]     build an exact-data-match index
//	leakline edm publish INDEX --brokers … [flags] publish it to Kafka
//	leakline edm info INDEX                        describe an index file
//
// Each command takes its arguments (without the command words), stdin,
// stdout and stderr, and returns the process exit status: 0 success, 1 an
// input or runtime failure, 2 a usage error. Commands never print raw PII:
// detections carry masked values and keyed tokens only.
package clicmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// parseArgs parses flags and positional arguments in any order ("publish
// INDEX --brokers x" as well as "publish --brokers x INDEX"); "--" ends
// the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at the first non-flag argument or after "--".
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError reports a usage problem: message, then the flag set's usage.
func usageError(fs *flag.FlagSet, stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "leakline %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return ExitUsage
}

// flagError maps a flag parsing error to an exit status (-h is not an
// error).
func flagError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitUsage
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
