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
	tree, _, dups, err := d.s.parseDoc(clean)
	if err != nil || len(dups) > 0 {
		return false, false, false
	}
	return true, d.s.fastValid(k, tree), len(d.s.validate(d.s.schemaFor(k), schemaTree(tree))) == 0
}

// TypedDecodes decodes raw into the Go type of kind k with both decoders of
// typedDecode: built from the parsed tree (the path of documents fastValid
// accepts) and with encoding/json; ok is false when either fails.
func TypedDecodes(d *Decoder, k Kind, raw []byte) (viaTree, viaStd any, ok bool) {
	tree, timeLit, dups, err := d.s.parseDoc(raw)
	if err != nil || len(dups) > 0 {
		return nil, nil, false
	}
	switch k {
	case KindCRMAccess:
		var a, b CRMAccess
		return &a, &b, typedFromTree(tree, timeLit, &a) == nil && typedDecode(raw, nil, nil, &b, false) == nil
	default:
		var a, b Outbound
		return &a, &b, typedFromTree(tree, timeLit, &a) == nil && typedDecode(raw, nil, nil, &b, false) == nil
	}
}

// MarshalEventStd is MarshalEvent's encoding/json path.
func MarshalEventStd(e *Event) ([]byte, error) { return marshalEventStd(e) }
