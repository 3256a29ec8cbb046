package stateres

import (
	"fmt"
	"slices"

	"maunium.net/go/mautrix/id"
)

// partition splits the state maps into the unconflicted state map (keys present in every map
// with the same event) and the conflicted state set (every other event), returned sorted so
// that nothing downstream depends on map iteration or on the order of sets. keyOf records the
// key each conflicted event was filed under.
func partition(sets []StateMap) (StateMap, []id.EventID, map[id.EventID]Key, error) {
	unconflicted := make(StateMap, len(sets[0]))
	keyOf := map[id.EventID]Key{}
	seen := make(map[Key]struct{}, len(sets[0]))
	for _, set := range sets {
		for k := range set {
			if _, done := seen[k]; done {
				continue
			}
			seen[k] = struct{}{}
			first, same := set[k], true
			for _, other := range sets {
				if v, ok := other[k]; !ok || v != first {
					same = false
					break
				}
			}
			if same {
				unconflicted[k] = first
				continue
			}
			for _, other := range sets {
				v, ok := other[k]
				if !ok {
					continue
				}
				if prev, dup := keyOf[v]; dup && prev != k {
					return nil, nil, nil, fmt.Errorf("%w: event %s is filed under two keys", ErrBadState, v)
				}
				keyOf[v] = k
			}
		}
	}
	conflicted := make([]id.EventID, 0, len(keyOf))
	for v := range keyOf {
		conflicted = append(conflicted, v)
	}
	slices.Sort(conflicted)
	return unconflicted, conflicted, keyOf, nil
}
