package event

// SchemaVerdicts tells, for a raw event of kind k, whether it parsed into a
// tree without duplicate keys and, if so, the verdicts of fastValid and of
// the compiled JSON Schema on that tree (for the external tests, which need
// pkg/scenario and so cannot live in this package).
func SchemaVerdicts(d *Decoder, k Kind, raw []byte) (parsed, fast, schema bool) {
	clean, _, err := sanitizeUTF8(raw)
	if err != nil {
		return false, false, false
	}
	tree, dups, err := d.s.parseTree(clean)
	if err != nil || len(dups) > 0 {
		return false, false, false
	}
	return true, d.s.fastValid(k, tree), len(d.s.validate(d.s.schemaFor(k), tree)) == 0
}

// TypedDecodes decodes raw into the Go type of kind k with both decoders of
// typedDecode; ok is false when either fails.
func TypedDecodes(k Kind, raw []byte) (viaGoccy, viaStd any, ok bool) {
	switch k {
	case KindCRMAccess:
		var a, b CRMAccess
		return &a, &b, fastUnmarshal(raw, &a) == nil && typedDecode(raw, &b, false) == nil
	default:
		var a, b Outbound
		return &a, &b, fastUnmarshal(raw, &a) == nil && typedDecode(raw, &b, false) == nil
	}
}

// MarshalEventStd is MarshalEvent's encoding/json path.
func MarshalEventStd(e *Event) ([]byte, error) { return marshalEventStd(e) }
