package event

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Normalize turns a decoded event into the canonical envelope, in place.
// The caller sets exactly one payload (CRM or Outbound) and may set Source
// and Quality; Normalize then:
//
//   - sets Kind from the payload (a preset Kind must agree), EventID, Time
//     (in UTC, also in the payload), Actor (copied from the payload) and
//     IngestedAt = now in UTC;
//   - lower-cases (ASCII letters only) e-mail addresses (actor,
//     recipients; not an address literal such as [IPv6:...]), domains and
//     the upload host (also without a trailing dot), and SHA-256 digests;
//   - CRM: sorts records.ids and removes duplicates, and sets records.count
//     to max(count, len(ids));
//   - Outbound: derives destination.domains from the recipients when
//     missing (an address literal names no domain); domains end up sorted
//     and unique either way;
//   - cuts every content text (body and attachments) longer than
//     l.MaxTextBytes at a rune boundary and sets its Truncated flag.
//
// Normalize is idempotent. It does not validate: use it on what a Decoder
// accepted. Its only error, a *DecodeError with reason "unknown_kind", is
// for an Event without exactly one payload matching its Kind.
func Normalize(e *Event, now time.Time, l Limits) error {
	l = l.withDefaults()
	switch {
	case e.CRM != nil && e.Outbound == nil && (e.Kind == "" || e.Kind == KindCRMAccess):
		e.Kind = KindCRMAccess
		normalizeCRM(e.CRM)
		e.EventID, e.Time, e.Actor = e.CRM.EventID, e.CRM.Time, e.CRM.Actor
	case e.Outbound != nil && e.CRM == nil && (e.Kind == "" || e.Kind == KindOutbound):
		e.Kind = KindOutbound
		normalizeOutbound(e.Outbound, l.MaxTextBytes)
		e.EventID, e.Time, e.Actor = e.Outbound.EventID, e.Outbound.Time, e.Outbound.Actor
	default:
		return newDecodeError(ReasonUnknownKind, &FieldError{Pointer: "/kind", Rule: "kind", Detail: "event needs exactly one payload matching its kind"})
	}
	e.IngestedAt = now.UTC()
	return nil
}

func normalizeCRM(c *CRMAccess) {
	c.Time = c.Time.UTC()
	c.Actor.Email = lowerEmail(c.Actor.Email)
	c.Records.IDs = sortUnique(c.Records.IDs)
	c.Records.Count = max(c.Records.Count, len(c.Records.IDs))
}

func normalizeOutbound(o *Outbound, maxText int) {
	o.Time = o.Time.UTC()
	o.Actor.Email = lowerEmail(o.Actor.Email)
	d := &o.Destination
	for i, r := range d.Recipients {
		d.Recipients[i] = lowerEmail(r)
	}
	if len(d.Domains) == 0 && len(d.Recipients) > 0 {
		d.Domains = make([]string, 0, len(d.Recipients))
		for _, r := range d.Recipients {
			if dom, ok := emailDomain(r); ok {
				d.Domains = append(d.Domains, dom)
			}
		}
		if len(d.Domains) == 0 {
			d.Domains = nil
		}
	}
	for i, dom := range d.Domains {
		d.Domains[i] = canonicalDomain(dom)
	}
	d.Domains = sortUnique(d.Domains)
	d.Host = canonicalDomain(d.Host)
	normalizeContent(&o.Content, maxText)
	for i := range o.Attachments {
		normalizeContent(&o.Attachments[i], maxText)
	}
}

func normalizeContent(c *Content, maxText int) {
	c.SHA256 = lowerASCII(c.SHA256)
	if len(c.Text) > maxText {
		c.Text = capText(c.Text, maxText)
		c.Truncated = true
	}
}

// lowerEmail lower-cases the ASCII letters of an address, except in an
// address literal ("[IPv6:...]"). Only ASCII: lower-casing other letters
// can change the length of a (quoted) local part and make it invalid.
func lowerEmail(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at >= 0 && strings.HasPrefix(addr[at+1:], "[") {
		return lowerASCII(addr[:at]) + addr[at:]
	}
	return lowerASCII(addr)
}

// canonicalDomain lower-cases a domain name and drops a trailing dot.
func canonicalDomain(d string) string {
	return strings.TrimSuffix(lowerASCII(d), ".")
}

// emailDomain is the canonical domain of an address; false for an address
// literal such as a@[192.0.2.1], which names no domain.
func emailDomain(addr string) (string, bool) {
	d := addr[strings.LastIndexByte(addr, '@')+1:]
	if strings.HasPrefix(d, "[") {
		return "", false
	}
	return canonicalDomain(d), true
}

// lowerASCII lower-cases ASCII letters only, without allocating when there
// are none.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// capText cuts s to at most n bytes at a rune boundary.
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// sortUnique sorts s in place and removes duplicates.
func sortUnique(s []string) []string {
	if len(s) < 2 {
		return s
	}
	if !slices.IsSorted(s) {
		slices.Sort(s)
	}
	return slices.Compact(s)
}
