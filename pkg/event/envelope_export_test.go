package event

// MarshalEventJSON exposes MarshalEvent's JSON form (an older normalizer's
// output, still read by UnmarshalEvent) to the external tests.
var MarshalEventJSON = marshalEventJSON
