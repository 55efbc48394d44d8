package detect

import (
	"hash/maphash"
	"iter"
	"maps"
)

// groupTable holds one rule's groups by key. The map is keyed by a seeded
// 64-bit hash of the key (16-byte slots instead of a string's 24); the
// group keeps its key, so a second live key with the same hash is told
// apart and kept in a small map by its full key: lookups stay exact.
type groupTable struct {
	seed    maphash.Seed
	byHash  map[uint64]*group
	collide map[string]*group   // nil until two live keys share a hash
	weak    func(string) uint64 // tests: a hash that collides on purpose
}

func newGroupTable() groupTable {
	return groupTable{seed: maphash.MakeSeed(), byHash: make(map[uint64]*group)}
}

func (t *groupTable) hash(key string) uint64 {
	if t.weak != nil {
		return t.weak(key)
	}
	return maphash.String(t.seed, key)
}

// hashOf is the hash of g's key (maphash.Bytes equals maphash.String).
func (t *groupTable) hashOf(g *group) uint64 {
	if t.weak != nil {
		return t.weak(string(g.rec.key()))
	}
	return maphash.Bytes(t.seed, g.rec.key())
}

// get returns the group of key, or nil.
func (t *groupTable) get(key string) *group {
	g := t.byHash[t.hash(key)]
	if g == nil || string(g.rec.key()) == key {
		return g
	}
	return t.collide[key]
}

// put adds g, whose key no group has.
func (t *groupTable) put(g *group) {
	h := t.hashOf(g)
	if _, taken := t.byHash[h]; !taken {
		t.byHash[h] = g
		return
	}
	if t.collide == nil {
		t.collide = make(map[string]*group)
	}
	t.collide[string(g.rec.key())] = g
}

// remove deletes g.
func (t *groupTable) remove(g *group) {
	h := t.hashOf(g)
	if t.byHash[h] != g {
		delete(t.collide, string(g.rec.key()))
		return
	}
	delete(t.byHash, h)
	// A group that collided with g takes its place.
	for k, o := range t.collide {
		if t.hash(k) == h {
			delete(t.collide, k)
			t.byHash[h] = o
			break
		}
	}
}

func (t *groupTable) len() int { return len(t.byHash) + len(t.collide) }

// all yields every group.
func (t *groupTable) all() iter.Seq[*group] {
	return func(yield func(*group) bool) {
		for g := range maps.Values(t.byHash) {
			if !yield(g) {
				return
			}
		}
		for g := range maps.Values(t.collide) {
			if !yield(g) {
				return
			}
		}
	}
}
