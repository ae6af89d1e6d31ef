package config

import (
	"fmt"
	"strings"
)

// suggest returns ` (did you mean "x"?)` for the known key closest to key,
// or "" when none is close.
func (k *knownKeys) suggest(key string) string {
	if best := k.closest(key, func(s string) string { return s }); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// suggestEnv is suggest for an environment variable name.
func (k *knownKeys) suggestEnv(name string) string {
	if best := k.closest(name, EnvName); best != "" {
		return fmt.Sprintf(" (did you mean %s?)", EnvName(best))
	}
	return ""
}

func (k *knownKeys) closest(s string, form func(string) string) string {
	best, bestD := "", 3 // suggest only within an edit distance of 2
	for key := range k.keys {
		d := distance(strings.ToLower(s), strings.ToLower(form(key)))
		if d < bestD || (d == bestD && key < best) {
			best, bestD = key, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
