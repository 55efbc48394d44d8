//go:build race

package inspect

// raceEnabled: under the race detector sync.Pool drops items on purpose, so
// allocation counts are meaningless.
const raceEnabled = true
