package normalizer

import "testing"

func TestSeenSet(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		add     []string
		present []string
		absent  []string
	}{
		{"remembers", 3, []string{"a", "b"}, []string{"a", "b"}, []string{"c"}},
		{"evicts the oldest first", 2, []string{"a", "b", "c"}, []string{"b", "c"}, []string{"a"}},
		{"re-adding does not evict", 2, []string{"a", "b", "a", "a"}, []string{"a", "b"}, nil},
		{"size below one is one", 0, []string{"a", "b"}, []string{"b"}, []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSeenSet(tc.size)
			for _, id := range tc.add {
				s.add(id)
			}
			for _, id := range tc.present {
				if !s.has(id) {
					t.Errorf("%q forgotten", id)
				}
			}
			for _, id := range tc.absent {
				if s.has(id) {
					t.Errorf("%q still remembered", id)
				}
			}
			if len(s.ids) > len(s.ring) {
				t.Errorf("%d ids held in a ring of %d", len(s.ids), len(s.ring))
			}
		})
	}
}
