package inspect

// Limits from RFC 5321.
const (
	maxLocalLen  = 64
	maxDomainLen = 253
	maxLabelLen  = 63
)

// notTLD reports file extensions that follow '@' in file names
// ("logo@2x.png") and are not top-level domains; ext is lower case.
func notTLD(ext []byte) bool {
	switch string(ext) {
	case "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "css", "js",
		"json", "html", "htm", "php", "asp", "aspx", "txt", "xml", "pdf", "jsp", "cgi":
		return true
	}
	return false
}

// email handles an '@' at position at: it expands left over local-part
// characters and right over domain characters, validates the shape and
// emits an EMAIL_ADDRESS. It returns where scanning resumes.
func (st *state) email(at int) int {
	b := st.text
	n := len(b)

	// Domain: labels of letters, digits and hyphens separated by dots.
	if st.s.forceWide {
		return st.emailWide(at, at+1)
	}
	j := at + 1
	for j < n && class[b[j]]&cDomain != 0 {
		j++
	}
	if j < n && b[j] >= 0x80 {
		if _, w := charAt(b, j); w > 0 {
			// An invisible character or a full-width form inside the
			// domain: the slower path reads through them.
			return st.emailWide(at, at+1)
		}
	}
	if j-at-1 > maxDomainLen+1 {
		return j
	}
	dEnd := j
	for k := at + 1; k+1 < dEnd; k++ {
		if b[k] == '.' && b[k+1] == '.' {
			dEnd = k
			break
		}
	}
	for dEnd > at+1 && (b[dEnd-1] == '.' || b[dEnd-1] == '-') {
		dEnd--
	}
	if !validDomain(b[at+1 : dEnd]) {
		return at + 1
	}

	// Local part: common characters first; the full atext set only when
	// nothing common precedes the '@' ("!#$%&'*+/=?^`{|}~@example.org").
	floor := st.floor
	i := at
	for i > floor && class[b[i-1]]&cLocal != 0 {
		i--
		if at-i > maxLocalLen {
			return dEnd
		}
	}
	if i == at {
		for i > floor && class[b[i-1]]&cAtext != 0 {
			i--
			if at-i > maxLocalLen {
				return dEnd
			}
		}
	}
	if i > floor && b[i-1] >= 0x80 {
		if _, w := charBefore(b, i); w > 0 {
			return st.emailWide(at, at+1)
		}
	}
	// A local part neither starts nor ends with a dot and has no "..":
	// start after the last "..", drop leading dots.
	for k := at - 1; k > i; k-- {
		if b[k] == '.' && b[k-1] == '.' {
			i = k + 1
			break
		}
	}
	for i < at && b[i] == '.' {
		i++
	}
	if i == at || b[at-1] == '.' {
		return at + 1
	}

	// Normalize: lower case.
	norm := st.norm[:0]
	for k := i; k < dEnd; k++ {
		c := b[k]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		norm = append(norm, c)
	}
	conf := High
	domain := norm[at-i+1:]
	if st.s.internalDomain(domain) {
		conf = Low
	} else if machineLocal(norm[:at-i]) {
		conf = Medium
	}
	st.emit(Email, i, dEnd, conf, norm)
	return dEnd
}

// validDomain reports whether d is a host name of at least two labels whose
// last label has the shape of a top-level domain (2-63 characters, starts
// with a letter, not a file extension).
func validDomain(d []byte) bool {
	if len(d) < 4 || len(d) > maxDomainLen {
		return false
	}
	labels := 0
	start := 0
	for k := 0; k <= len(d); k++ {
		if k < len(d) && d[k] != '.' {
			continue
		}
		l := d[start:k]
		if len(l) == 0 || len(l) > maxLabelLen || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		labels++
		start = k + 1
	}
	if labels < 2 {
		return false
	}
	tld := d[lastDot(d)+1:]
	if len(tld) < 2 || class[tld[0]]&(cUpper|cLower) == 0 {
		return false
	}
	if len(tld) <= 4 {
		var lower [4]byte
		for k, c := range tld {
			lower[k] = c | 0x20
		}
		if notTLD(lower[:len(tld)]) {
			return false
		}
	}
	return true
}

func lastDot(d []byte) int {
	for k := len(d) - 1; k >= 0; k-- {
		if d[k] == '.' {
			return k
		}
	}
	return -1
}

// internalDomain reports whether the (lower-case) domain is one of
// AllowDomains or a subdomain of one.
func (s *Scanner) internalDomain(domain []byte) bool {
	for _, a := range s.allowDomains {
		if len(domain) == len(a) && string(domain) == a {
			return true
		}
		if len(domain) > len(a) && domain[len(domain)-len(a)-1] == '.' && string(domain[len(domain)-len(a):]) == a {
			return true
		}
	}
	return false
}

// machineLocal reports whether a local part looks generated rather than
// personal (message ids, bounce addresses): long, digit-heavy or using
// unusual characters.
func machineLocal(l []byte) bool {
	if len(l) > 40 {
		return true
	}
	digits := 0
	for _, c := range l {
		switch {
		case isDigit(c):
			digits++
		case class[c]&cLocal == 0 || c == '%':
			return true
		}
	}
	return digits >= 8
}
