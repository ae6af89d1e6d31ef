package config

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/knadh/koanf/maps"
	"go.yaml.in/yaml/v3"
)

// YAML renders the effective config as YAML, in field order, with each
// component's own keys inline in its section. Loading the output as a
// config file gives the same config.
func (c *Config) YAML() ([]byte, error) {
	fields := Fields(c, "")
	// An external plugin's section: its keys as given.
	if c.Storage.Config == nil && len(c.Storage.Raw) > 0 {
		flat, _ := maps.Flatten(maps.Copy(c.Storage.Raw), nil, ".")
		keys := make([]string, 0, len(flat))
		for k := range flat {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fields = append(fields, Field{Key: "storage." + k, Value: reflect.ValueOf(flat[k])})
		}
	}
	root, err := fieldsNode(fields)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// FormatValue renders a default value for documentation: YAML flow style on
// one line, "" for the empty string.
func FormatValue(v reflect.Value) string {
	n, err := valueNode(v)
	if err != nil {
		return fmt.Sprint(v.Interface())
	}
	if n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode {
		n.Style = yaml.FlowStyle
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return fmt.Sprint(v.Interface())
	}
	s := strings.TrimSpace(string(b))
	if s == "" || s == `''` {
		return `""`
	}
	return s
}

// fieldsNode builds a mapping node from leaf fields, nesting dotted keys.
func fieldsNode(fields []Field) (*yaml.Node, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range fields {
		parts := strings.Split(f.Key, ".")
		n := root
		for _, p := range parts[:len(parts)-1] {
			n = child(n, p)
		}
		v, err := valueNode(f.Value)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", f.Key, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: parts[len(parts)-1]}, v)
	}
	return root, nil
}

// child returns the mapping under key in n, adding it if missing.
func child(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	c := &yaml.Node{Kind: yaml.MappingNode}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, c)
	return c
}

// valueNode renders a leaf: durations as "5s", structs by their koanf keys,
// slices element by element, anything else as yaml encodes it.
func valueNode(v reflect.Value) (*yaml.Node, error) {
	if v.Type() == durationType {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: time.Duration(v.Int()).String()}, nil
	}
	switch v.Kind() {
	case reflect.Struct:
		if !isBranch(v.Type()) {
			break
		}
		return fieldsNode(Fields(v.Interface(), ""))
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			break
		}
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			e, err := valueNode(v.Index(i))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, e)
		}
		return n, nil
	}
	n := &yaml.Node{}
	if err := n.Encode(v.Interface()); err != nil {
		return nil, err
	}
	return n, nil
}
