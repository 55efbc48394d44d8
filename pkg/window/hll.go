package window

import (
	"math"
	"math/bits"
	"unsafe"
)

// DefaultPrecision is the default HyperLogLog precision p of Distinct's
// sketch: 2^p = 1024 registers, relative standard error 1.04/sqrt(1024) ≈ 3.25%.
const DefaultPrecision = 10

const (
	rankBits  = 6
	rankMask  = 1<<rankBits - 1
	tickBits  = 32 - rankBits
	tickMax   = 1<<tickBits - 1
	tickSteps = 1 << 16 // ticks per window width: time resolution W/65536
	minStride = 4
)

// slidingHLL is a sliding HyperLogLog (Chabchoub & Hébrail, "Sliding
// HyperLogLog: Estimating cardinality in a data stream over a sliding
// window", 2010). Each register keeps its list of possible future maxima:
// the (time, rank) pairs not dominated by a pair that is both newer and at
// least as high, i.e. ascending in time and strictly descending in rank. The
// register's value for the window (cut, now] is the rank of its first pair
// newer than cut, so after evicting expired pairs it is the first pair.
//
// A pair is one uint32: a 26-bit time tick (resolution W/65536, relative to
// base, rounded up, so a pair is kept at most W/65536 too long) and a 6-bit
// rank. Register j's pairs are pairs[j*stride : j*stride+lens[j]]; stride
// grows when a register needs more room (the list is O(log n) long). A
// min-heap of the non-empty registers by the tick of their first pair makes
// eviction O(log m) per expiring pair, and a histogram of register values
// makes the estimate O(64-p) (Ertl's improved estimator, no bias tables).
type slidingHLL struct {
	p      uint8
	q      uint8 // 64-p: register values are 0..q+1
	stride int
	res    int64 // nanoseconds per tick
	base   int64 // Unix nanoseconds of tick 0
	lens   []uint8
	pairs  []uint32
	heap   []uint16 // registers with pairs, by the tick of their first pair
	pos    []uint16 // register -> heap index + 1; 0 when not in the heap
	hist   [64]int32
	est    float64
	dirty  bool
}

func newSlidingHLL(p uint8, width, base int64) *slidingHLL {
	m := 1 << p
	s := &slidingHLL{
		p:      p,
		q:      64 - p,
		stride: minStride,
		res:    max(ceilDiv(width, tickSteps), 1),
		base:   base,
		lens:   make([]uint8, m),
		pairs:  make([]uint32, m*minStride),
		pos:    make([]uint16, m),
	}
	s.hist[0] = int32(m)
	return s
}

// mix is the 64-bit finalizer of MurmurHash3, a bijection: callers' hashes
// (FNV of record ids, for one) need not have good high bits.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func tickOf(pr uint32) int64 { return int64(pr >> rankBits) }
func rankOf(pr uint32) uint8 { return uint8(pr & rankMask) }

func (s *slidingHLL) key(j uint16) int64 { return tickOf(s.pairs[int(j)*s.stride]) }

// add records hash h seen at ts (Unix nanoseconds).
func (s *slidingHLL) add(h uint64, ts int64) {
	x := mix(h)
	j := int(x >> s.q)
	rank := uint8(bits.LeadingZeros64(x<<s.p)) + 1
	if rank > s.q+1 {
		rank = s.q + 1
	}
	tick := ceilDiv(ts-s.base, s.res)
	if tick < 0 {
		return // older than anything the sketch can still hold
	}
	if tick > tickMax {
		tick -= s.rebase(tick)
	}
	s.insert(j, tick, rank)
}

// insert adds the pair (tick, rank) to register j unless a pair at least as
// new and as high dominates it, and drops the pairs it dominates.
func (s *slidingHLL) insert(j int, tick int64, rank uint8) {
	off := j * s.stride
	n := int(s.lens[j])
	seg := s.pairs[off : off+n]
	i := n
	for i > 0 && tickOf(seg[i-1]) >= tick {
		i--
	}
	if i < n && rankOf(seg[i]) >= rank {
		return // dominated by a newer pair
	}
	end := i
	if i < n && tickOf(seg[i]) == tick {
		end = i + 1 // same tick, lower rank: dominated by the new pair
	}
	start := i
	for start > 0 && rankOf(seg[start-1]) <= rank {
		start--
	}
	oldValue := uint8(0)
	if n > 0 {
		oldValue = rankOf(seg[0])
	}
	newLen := n - (end - start) + 1
	if newLen > s.stride {
		s.grow()
		off = j * s.stride
	}
	seg = s.pairs[off : off+s.stride]
	copy(seg[start+1:newLen], seg[end:n])
	seg[start] = uint32(tick)<<rankBits | uint32(rank)
	s.lens[j] = uint8(newLen)
	if start == 0 {
		// The register's first pair changed: its value and its heap key.
		s.setValue(oldValue, rank)
		if s.pos[j] == 0 {
			s.heapPush(uint16(j))
		} else {
			s.heapFix(int(s.pos[j]) - 1)
		}
	}
}

func (s *slidingHLL) setValue(old, v uint8) {
	if old == v {
		return
	}
	s.hist[old]--
	s.hist[v]++
	s.dirty = true
}

// grow makes room for more pairs per register.
func (s *slidingHLL) grow() {
	ns := min(s.stride+minStride, int(s.q)+1)
	np := make([]uint32, len(s.lens)*ns)
	for j, n := range s.lens {
		copy(np[j*ns:j*ns+int(n)], s.pairs[j*s.stride:j*s.stride+int(n)])
	}
	s.pairs, s.stride = np, ns
}

// rebase moves tick 0 forward so that tick fits, and returns the shift. The
// shift is as small as the oldest pair allows; if even the newest window does
// not fit (the caller stopped advancing), the oldest pairs are evicted.
func (s *slidingHLL) rebase(tick int64) int64 {
	shift := tick - tickMax/2
	if len(s.heap) > 0 {
		if oldest := s.key(s.heap[0]); tick-(oldest-1) <= tickMax {
			shift = oldest - 1
		} else {
			s.advanceTick(shift)
		}
	}
	for j, n := range s.lens {
		off := j * s.stride
		for k := range int(n) {
			pr := s.pairs[off+k]
			s.pairs[off+k] = uint32(tickOf(pr)-shift)<<rankBits | pr&rankMask
		}
	}
	s.base += shift * s.res
	return shift
}

// advance evicts every pair at or before cut (Unix nanoseconds).
func (s *slidingHLL) advance(cut int64) {
	if cut < s.base {
		return
	}
	s.advanceTick(floorDiv(cut-s.base, s.res))
}

func (s *slidingHLL) advanceTick(cutTick int64) {
	for len(s.heap) > 0 {
		j := int(s.heap[0])
		off := j * s.stride
		if tickOf(s.pairs[off]) > cutTick {
			return
		}
		n := int(s.lens[j])
		k := 1
		for k < n && tickOf(s.pairs[off+k]) <= cutTick {
			k++
		}
		old := rankOf(s.pairs[off])
		copy(s.pairs[off:off+n-k], s.pairs[off+k:off+n])
		n -= k
		s.lens[j] = uint8(n)
		if n == 0 {
			s.setValue(old, 0)
			s.heapRemoveTop()
		} else {
			s.setValue(old, rankOf(s.pairs[off]))
			s.heapFix(0)
		}
	}
}

func (s *slidingHLL) empty() bool { return len(s.heap) == 0 }

// oldest is the time of the earliest pair still held.
func (s *slidingHLL) oldest() (int64, bool) {
	if len(s.heap) == 0 {
		return 0, false
	}
	return s.base + s.key(s.heap[0])*s.res, true
}

// estimate is Ertl's improved raw estimator ("New cardinality estimation
// algorithms for HyperLogLog sketches", 2017), unbiased over the whole range
// without empirical corrections.
func (s *slidingHLL) estimate() float64 {
	if !s.dirty {
		return s.est
	}
	m := float64(len(s.lens))
	q := int(s.q)
	z := m * hllTau(1-float64(s.hist[q+1])/m)
	for k := q; k >= 1; k-- {
		z = 0.5 * (z + float64(s.hist[k]))
	}
	z += m * hllSigma(float64(s.hist[0])/m)
	s.est = m * m / (2 * math.Ln2 * z)
	if math.IsNaN(s.est) || math.IsInf(s.est, 0) {
		s.est = 0
	}
	s.dirty = false
	return s.est
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		zp := z
		z += x * y
		y += y
		if z == zp {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		zp := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == zp {
			return z / 3
		}
	}
}

func (s *slidingHLL) size() int {
	return int(unsafe.Sizeof(*s)) + len(s.lens) + 4*len(s.pairs) + 2*cap(s.heap) + 2*len(s.pos)
}

// The heap of registers, keyed by the tick of their first pair.

func (s *slidingHLL) heapSwap(a, b int) {
	s.heap[a], s.heap[b] = s.heap[b], s.heap[a]
	s.pos[s.heap[a]] = uint16(a + 1)
	s.pos[s.heap[b]] = uint16(b + 1)
}

func (s *slidingHLL) heapPush(j uint16) {
	s.heap = append(s.heap, j)
	s.pos[j] = uint16(len(s.heap))
	s.heapUp(len(s.heap) - 1)
}

func (s *slidingHLL) heapRemoveTop() {
	last := len(s.heap) - 1
	s.pos[s.heap[0]] = 0
	if last > 0 {
		s.heap[0] = s.heap[last]
		s.pos[s.heap[0]] = 1
	}
	s.heap = s.heap[:last]
	if last > 0 {
		s.heapDown(0)
	}
}

func (s *slidingHLL) heapFix(i int) {
	if !s.heapDown(i) {
		s.heapUp(i)
	}
}

func (s *slidingHLL) heapUp(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if s.key(s.heap[parent]) <= s.key(s.heap[i]) {
			return
		}
		s.heapSwap(i, parent)
		i = parent
	}
}

func (s *slidingHLL) heapDown(i0 int) bool {
	i, n := i0, len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && s.key(s.heap[r]) < s.key(s.heap[l]) {
			c = r
		}
		if s.key(s.heap[c]) >= s.key(s.heap[i]) {
			break
		}
		s.heapSwap(i, c)
		i = c
	}
	return i > i0
}
