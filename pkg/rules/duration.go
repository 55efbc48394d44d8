package rules

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Day is the unit of the d suffix of durations.
const Day = 24 * time.Hour

// Bounds of windows (see docs/RULES.md "Bounds").
const (
	MaxWindow   = 30 * Day // over, within and cooldown
	MaxHistory  = 90 * Day // baseline history
	MinWindow   = time.Second
	MinBucket   = time.Minute
	MaxDuration = 3650 * Day // anything longer is a typo
)

var errDuration = errors.New(`not a duration: write a number with a unit, e.g. 90s, 15m, 1h30m, 30d or 1d12h (units ns, us, ms, s, m, h, d)`)

// ParseDuration parses a rule-pack duration: a non-negative Go duration
// ("1h30m", "90s") optionally preceded by a whole number of days with the
// suffix d ("30d", "1d12h"). Signs are not accepted.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" || s[0] == '-' || s[0] == '+' {
		return 0, errDuration
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 32)
		if err != nil || i == 0 {
			return 0, errDuration
		}
		if time.Duration(n) > MaxDuration/Day {
			return 0, errors.New("duration too long (more than 3650d)")
		}
		days = time.Duration(n) * Day
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
		if s[0] == '-' || s[0] == '+' {
			return 0, errDuration
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errDuration
	}
	if d > MaxDuration-days {
		return 0, errors.New("duration too long (more than 3650d)")
	}
	return days + d, nil
}

// FormatDuration renders d the way a rule author writes it: whole days as
// "30d", otherwise days plus a Go duration ("1d12h0m0s" becomes "1d12h").
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return d.String()
	}
	days, rest := d/Day, d%Day
	out := ""
	if days > 0 {
		out = strconv.FormatInt(int64(days), 10) + "d"
	}
	if rest == 0 {
		return out
	}
	r := rest.String()
	if strings.HasSuffix(r, "m0s") {
		r = r[:len(r)-2]
	}
	if strings.HasSuffix(r, "h0m") {
		r = r[:len(r)-2]
	}
	return out + r
}
