package component

import (
	"fmt"
	"sort"
	"strings"
)

// Named is anything that has a component type name; every Factory is one.
type Named interface {
	Type() Type
}

// MakeMap indexes factories by type name. A duplicate or malformed name is an
// error: the static factory list in cmd is a programming error then.
func MakeMap[F Named](factories ...F) (map[Type]F, error) {
	m := make(map[Type]F, len(factories))
	for _, f := range factories {
		t := f.Type()
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if _, dup := m[t]; dup {
			return nil, fmt.Errorf("component: duplicate factory %q", t)
		}
		m[t] = f
	}
	return m, nil
}

// Lookup returns the factory named t, or an error that lists the valid names.
func Lookup[F Named](kind string, m map[Type]F, t Type) (F, error) {
	f, ok := m[t]
	if !ok {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, string(n))
		}
		sort.Strings(names)
		var zero F
		return zero, fmt.Errorf("unknown %s type %q (valid: %s)", kind, t, strings.Join(names, ", "))
	}
	return f, nil
}
