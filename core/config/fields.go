package config

import (
	"encoding"
	"reflect"
	"strings"
	"time"
)

// EnvPrefix starts the name of every environment variable Chronik reads.
const EnvPrefix = "CHRONIK_"

// EnvName is the environment variable that sets key: CHRONIK_ followed by
// the key upper-cased, with '.' replaced by '_' (storage.plugin.mode is
// CHRONIK_STORAGE_PLUGIN_MODE, node.data_dir is CHRONIK_NODE_DATA_DIR).
// Because keys contain underscores, the reverse mapping is resolved against
// the set of known keys, never by splitting the name.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Field is one leaf key of a config struct, as Fields finds it.
type Field struct {
	// Key is the dotted koanf path, such as "node.data_dir".
	Key string
	// Value is the field's value.
	Value reflect.Value
	// Owner is the struct type that declares the field and Name its Go
	// name; together they locate the field's doc comment.
	Owner reflect.Type
	Name  string
}

// IsMap reports whether the key holds a map, whose entries are sub-keys
// (key.anything) that Fields does not list.
func (f Field) IsMap() bool { return f.Value.Kind() == reflect.Map }

var (
	durationType      = reflect.TypeFor[time.Duration]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// Fields lists the leaf keys of v (a struct or a pointer to one) in field
// order, each prefixed with prefix ("" or a path ending in '.'). It follows
// koanf tags: a field tagged koanf:"-" is skipped, an untagged one is keyed
// by its lower-cased name, a nested struct adds a path level, and an
// interface field tagged config:"inline" (a component's own config) is
// walked in place, at the level of its parent. Slices, maps, durations and
// scalars are leaves.
func Fields(v any, prefix string) []Field {
	var out []Field
	walk(reflect.ValueOf(v), prefix, &out)
	return out
}

func walk(v reflect.Value, prefix string, out *[]Field) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			if v.Kind() == reflect.Interface {
				return
			}
			v = reflect.Zero(v.Type().Elem())
			continue
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		fv := v.Field(i)
		if sf.Tag.Get("config") == "inline" {
			walk(fv, prefix, out)
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("koanf"), ",")
		if name == "-" {
			continue
		}
		if sf.Anonymous && strings.Contains(opts, "squash") {
			walk(fv, prefix, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		key := prefix + name
		if isBranch(fv.Type()) {
			walk(fv, key+".", out)
			continue
		}
		*out = append(*out, Field{Key: key, Value: fv, Owner: t, Name: sf.Name})
	}
}

// isBranch reports whether a value of type t is a nested section rather
// than a leaf.
func isBranch(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && t != durationType &&
		!t.Implements(textMarshalerType) && !reflect.PointerTo(t).Implements(textMarshalerType)
}

// flat turns fields into the flat key -> value map koanf loads.
func flat(fields []Field) map[string]any {
	m := make(map[string]any, len(fields))
	for _, f := range fields {
		m[f.Key] = f.Value.Interface()
	}
	return m
}
