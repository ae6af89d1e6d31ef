package config

import (
	"github.com/knadh/koanf/v2"

	"github.com/chronik-go/chronik/core/component"
)

// DecodeSection decodes a component's config section, given as a nested
// map of its keys (what a plugin receives from its host), over out, a
// config obtained from the factory's DefaultConfig, then validates it. It
// decodes the way Load does (durations as strings such as 500ms, numbers
// given as strings), refuses unknown keys, and returns every problem in one
// *Error, each naming its key as <name>.<key>.
func DecodeSection(name string, section map[string]any, out component.Config) error {
	var p problems
	k := koanf.New(".")
	if section != nil {
		mustLoad(k, section)
	}
	known := &knownKeys{keys: map[string]Field{}}
	known.add(Fields(out, name+"."))
	for _, key := range k.Keys() {
		if full := name + "." + key; !known.has(full) {
			p.addf("%s: unknown key%s", full, known.suggest(full))
		}
	}
	if len(p) > 0 {
		return p.err()
	}
	if err := unmarshal(k, "", out, true); err != nil {
		decodeProblems(&p, name+".", err)
		return p.err()
	}
	if err := component.Validate(out); err != nil {
		p.addf("%s: %w", name, err)
	}
	return p.err()
}
