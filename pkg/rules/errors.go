package rules

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Pos is a place in a rule-pack file: 1-based line and column (columns
// count runes, as editors do).
type Pos struct {
	File         string
	Line, Column int
}

// String renders "file:line:col", the prefix of every error of this package.
func (p Pos) String() string {
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Error is one problem found in a rule pack or a fixture, at one place.
// Every error LoadDir, Parse and LoadTests return is a *multierror.Error
// whose wrapped errors are all *Error, sorted by file, line and column.
type Error struct {
	Pos Pos
	Msg string
}

// Error renders "file:line:col: message".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// errList collects errors of one load.
type errList struct {
	errs []*Error
}

func (l *errList) add(p Pos, format string, a ...any) {
	if p.Line < 1 {
		p.Line = 1
	}
	if p.Column < 1 {
		p.Column = 1
	}
	l.errs = append(l.errs, &Error{Pos: p, Msg: fmt.Sprintf(format, a...)})
}

func (l *errList) len() int { return len(l.errs) }

// err returns nil or a *multierror.Error of the sorted, deduplicated errors,
// rendered one per line.
func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	l.errs = slices.CompactFunc(l.errs, func(a, b *Error) bool { return *a == *b })
	me := &multierror.Error{ErrorFormat: formatErrors}
	for _, e := range l.errs {
		me.Errors = append(me.Errors, e)
	}
	return me
}

// formatErrors renders one error per line, as compilers do, so that editors
// and CI logs can jump to each place.
func formatErrors(errs []error) string {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Errors returns the individual *Error values of an error returned by this
// package (nil if err holds none).
func Errors(err error) []*Error {
	var me *multierror.Error
	if errors.As(err, &me) {
		out := make([]*Error, 0, len(me.Errors))
		for _, e := range me.Errors {
			var re *Error
			if errors.As(e, &re) {
				out = append(out, re)
			}
		}
		return out
	}
	var re *Error
	if errors.As(err, &re) {
		return []*Error{re}
	}
	return nil
}
