// Package fielddocs reads the Go doc comments of the structs whose fields
// the plugin's schema serves (the components' Args and outputs, their
// nested types, the plugin resources' pluginapi types, the plugin's own
// function types) and writes them as a Go table, provider/fielddocs_gen.go,
// which the plugin's GetSchema uses to describe every property.
//
// The components cannot describe their fields to infer themselves: that
// takes an Annotate method with pulumi-go-provider's Annotator, and the
// components must not import pulumi-go-provider (it brings the Pulumi
// engine). Their comments are the one source; `go generate` in provider/
// copies them, and TestFieldDocsCurrent fails when the copy is stale.
package fielddocs

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Source is a Go package whose structs reach the schema.
type Source struct {
	// Path is the import path, as `go list` in provider/ resolves it.
	Path string
	// Key is the package's name in the table's keys, when it is not Path
	// (the plugin's own package, whose types reflect calls main).
	Key string
	// Types limits the structs read to these (nil: every struct with a
	// pulumi-tagged field).
	Types []string
}

// Sources are the packages the schema's properties come from.
var Sources = []Source{
	{Path: "github.com/sda-platform/sda/components"},
	{Path: "github.com/sda-platform/sda/components/pluginapi"},
	// TalosNode's clientConfiguration input.
	{Path: "github.com/pulumiverse/pulumi-talos/sdk/go/talos/machine", Types: []string{"ClientConfiguration"}},
	{Path: "github.com/sda-platform/sda/provider", Key: "main"},
}

// Docs are comments by Go type ("<import path>.<Name>") and property name
// (the field's pulumi tag name); "" is the type's own comment.
type Docs map[string]map[string]string

// Read parses the sources' files, `go list` resolving them from dir (the
// provider module's directory).
func Read(dir string) (Docs, error) {
	docs := Docs{}
	for _, src := range Sources {
		cmd := exec.Command("go", "list", "-f", `{{.Dir}}{{range .GoFiles}}{{"\n"}}{{.}}{{end}}`, src.Path)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list %s: %v: %s", src.Path, err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		key := src.Key
		if key == "" {
			key = src.Path
		}
		if err := readPackage(docs, key, lines[0], lines[1:], src.Types); err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// structInfo is one struct as read: its fields' docs by property name, and
// the same-package structs it embeds.
type structInfo struct {
	doc    string
	fields map[string]string
	embeds []string
	// tagged says a field has a pulumi tag.
	tagged bool
}

func readPackage(docs Docs, key, dir string, files []string, only []string) error {
	fset := token.NewFileSet()
	structs := map[string]*structInfo{}
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok || !ts.Name.IsExported() || ts.Assign != 0 {
					continue
				}
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				structs[ts.Name.Name] = readStruct(fset, text(doc), st)
			}
		}
	}
	var fields func(name string, seen map[string]bool) map[string]string
	fields = func(name string, seen map[string]bool) map[string]string {
		s := structs[name]
		out := map[string]string{}
		if s == nil || seen[name] {
			return out
		}
		seen[name] = true
		for _, e := range s.embeds {
			for k, v := range fields(e, seen) {
				out[k] = v
			}
		}
		for k, v := range s.fields {
			out[k] = v
		}
		return out
	}
	// tagged says a struct or one it embeds has a pulumi-tagged field: it
	// is a type the schema may serve.
	var tagged func(name string, seen map[string]bool) bool
	tagged = func(name string, seen map[string]bool) bool {
		s := structs[name]
		if s == nil || seen[name] {
			return false
		}
		seen[name] = true
		if s.tagged {
			return true
		}
		for _, e := range s.embeds {
			if tagged(e, seen) {
				return true
			}
		}
		return false
	}
	for name, s := range structs {
		if only != nil && !contains(only, name) {
			continue
		}
		if !tagged(name, map[string]bool{}) {
			continue
		}
		fs := fields(name, map[string]bool{})
		if s.doc != "" {
			fs[""] = s.doc
		}
		docs[key+"."+name] = fs
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readStruct takes each pulumi-tagged field's comment: its own (above it,
// or after it on its line), else that of the field before it in the same
// block of lines when that comment names it ("TimeoutSeconds bounds each
// wait; PollSeconds is the interval between checks" describes both).
func readStruct(fset *token.FileSet, doc string, st *ast.StructType) *structInfo {
	s := &structInfo{doc: doc, fields: map[string]string{}}
	var prevDoc string
	prevEnd := -2
	for _, f := range st.Fields.List {
		own := text(f.Doc)
		if own == "" {
			own = text(f.Comment)
		}
		start := fset.Position(f.Pos()).Line
		if f.Doc != nil {
			start = fset.Position(f.Doc.Pos()).Line
		}
		adjacent := start == prevEnd+1
		prevEnd = fset.Position(f.End()).Line
		if len(f.Names) == 0 {
			if id, ok := f.Type.(*ast.Ident); ok {
				s.embeds = append(s.embeds, id.Name)
			}
			prevDoc = ""
			continue
		}
		d := own
		if d == "" && adjacent && prevDoc != "" {
			for _, n := range f.Names {
				if regexp.MustCompile(`\b` + n.Name + `\b`).MatchString(prevDoc) {
					d = prevDoc
				}
			}
		}
		if own != "" || !adjacent {
			prevDoc = own
		}
		if f.Tag == nil {
			continue
		}
		tag, err := strconv.Unquote(f.Tag.Value)
		if err != nil {
			continue
		}
		name, _, _ := strings.Cut(reflect.StructTag(tag).Get("pulumi"), ",")
		if name == "" || !f.Names[0].IsExported() {
			continue
		}
		s.tagged = true
		if d != "" {
			s.fields[name] = d
		}
	}
	return s
}

// text is a comment's text as one paragraph per blank-line-separated block.
func text(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	var paras []string
	for _, p := range strings.Split(strings.TrimSpace(cg.Text()), "\n\n") {
		paras = append(paras, strings.Join(strings.Fields(p), " "))
	}
	return strings.TrimSpace(strings.Join(paras, "\n\n"))
}

// Source is the Go file that holds docs as the variable name in package
// pkg.
func (docs Docs) Source(pkg, name, generator string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by %s; DO NOT EDIT.\n\npackage %s\n\n", generator, pkg)
	fmt.Fprintf(&b, "// %s are the Go comments of the fields the schema serves, by Go type\n", name)
	fmt.Fprintf(&b, "// and property name (\"\": the type's own comment).\n")
	fmt.Fprintf(&b, "var %s = map[string]map[string]string{\n", name)
	types := make([]string, 0, len(docs))
	for t := range docs {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		fmt.Fprintf(&b, "%s: {\n", strconv.Quote(t))
		props := make([]string, 0, len(docs[t]))
		for p := range docs[t] {
			props = append(props, p)
		}
		sort.Strings(props)
		for _, p := range props {
			fmt.Fprintf(&b, "%s: %s,\n", strconv.Quote(p), strconv.Quote(docs[t][p]))
		}
		fmt.Fprintf(&b, "},\n")
	}
	fmt.Fprintf(&b, "}\n")
	return format.Source(b.Bytes())
}

// Generator is the command that writes provider/fielddocs_gen.go.
const Generator = "go run ./cmd/fielddocs"
