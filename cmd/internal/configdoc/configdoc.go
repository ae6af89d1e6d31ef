// Package configdoc renders the configuration reference
// (docs/CONFIGURATION.md) from the config defaults and the doc comments of
// the config structs, so that the document cannot drift from the code: the
// chronik command's tests regenerate it and compare.
package configdoc

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/chronik-go/chronik/core/config"
)

// ModulePrefix is the import path prefix of the repository's modules; a
// module's directory is the path element after it.
const ModulePrefix = "github.com/chronik-go/chronik/"

// Section is one table of the document.
type Section struct {
	// Title is the section heading; Intro a paragraph under it (optional).
	Title, Intro string
	Fields       []config.Field
}

// Comments finds the doc comments of struct fields in the repository's
// source. It parses each package once.
type Comments struct {
	root string                                  // the repository root
	pkgs map[string]map[string]map[string]string // package path -> type -> field -> comment
}

// NewComments reads comments from the repository checked out at root.
func NewComments(root string) *Comments {
	return &Comments{root: root, pkgs: map[string]map[string]map[string]string{}}
}

// Field returns the doc comment (or trailing line comment) of field name of
// struct type owner, on one line, or "" if it has none or is not in the
// repository.
func (c *Comments) Field(owner reflect.Type, name string) (string, error) {
	pkg := owner.PkgPath()
	rel, ok := strings.CutPrefix(pkg, ModulePrefix)
	if !ok {
		return "", nil
	}
	types, ok := c.pkgs[pkg]
	if !ok {
		var err error
		if types, err = parseDir(filepath.Join(c.root, filepath.FromSlash(rel))); err != nil {
			return "", err
		}
		c.pkgs[pkg] = types
	}
	return types[owner.Name()][name], nil
}

func parseDir(dir string) (map[string]map[string]string, error) {
	fset := token.NewFileSet()
	matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, m := range matches {
		if strings.HasSuffix(m, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, m, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("configdoc: %w", err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			fields := map[string]string{}
			for _, fl := range st.Fields.List {
				text := fl.Doc.Text()
				if text == "" {
					text = fl.Comment.Text()
				}
				for _, id := range fl.Names {
					fields[id.Name] = describe(id.Name, text)
				}
			}
			out[ts.Name.Name] = fields
			return true
		})
	}
	return out, nil
}

// describe turns a Go doc comment into a description for users: on one
// line, without the Go field name it starts with ("DataDir is the
// directory ..." becomes "The directory ...").
func describe(name, text string) string {
	words := strings.Fields(text)
	if len(words) > 1 && words[0] == name {
		words = words[1:]
		if len(words) > 1 && (words[0] == "is" || words[0] == "are") {
			words = words[1:]
		}
		words[0] = strings.ToUpper(words[0][:1]) + words[0][1:]
	}
	return strings.Join(words, " ")
}

// Render writes the document: header, then a table per section with each
// key's default, environment variable and description. A field without a
// doc comment is described by fallback[key], else left blank.
func Render(header string, sections []Section, c *Comments, fallback map[string]string) (string, error) {
	var b strings.Builder
	b.WriteString(header)
	for _, s := range sections {
		fmt.Fprintf(&b, "\n## %s\n\n", s.Title)
		if s.Intro != "" {
			b.WriteString(s.Intro + "\n\n")
		}
		b.WriteString("| Key | Default | Environment | Description |\n|---|---|---|---|\n")
		for _, f := range s.Fields {
			desc, err := c.Field(f.Owner, f.Name)
			if err != nil {
				return "", err
			}
			if desc == "" {
				desc = fallback[f.Key]
			}
			fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %s |\n", f.Key, config.FormatValue(f.Value), config.EnvName(f.Key), cell(desc))
		}
	}
	return b.String(), nil
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}
