package plugins

import (
	"reflect"
	"strings"
	"time"

	"github.com/chronik-go/chronik/core/component"
)

// SectionOf returns a component config struct as the section a plugin
// receives: its koanf keys and values (durations as strings such as
// "10ms"), nested structs as nested maps.
func SectionOf(cfg component.Config) map[string]any {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	return sectionOf(v)
}

func sectionOf(v reflect.Value) map[string]any {
	m := map[string]any{}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if key == "-" {
			continue
		}
		if key == "" {
			key = strings.ToLower(f.Name)
		}
		fv := v.Field(i)
		switch {
		case fv.Type() == reflect.TypeFor[time.Duration]():
			m[key] = time.Duration(fv.Int()).String()
		case fv.Kind() == reflect.Struct:
			m[key] = sectionOf(fv)
		default:
			m[key] = fv.Interface()
		}
	}
	return m
}
