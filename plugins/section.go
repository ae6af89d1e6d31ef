package plugins

import (
	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
)

// SectionOf returns a component config struct as the section a plugin
// receives: each key (config.Fields: koanf's, dotted for nested structs)
// and its value; durations go out as strings such as "10ms" (jsonSafe).
func SectionOf(cfg component.Config) map[string]any {
	m := map[string]any{}
	for _, f := range config.Fields(cfg, "") {
		m[f.Key] = f.Value.Interface()
	}
	return m
}
