package edm

// Index fingerprints are keyed SipHash-2-4 values.
import _ "github.com/dchest/siphash"
