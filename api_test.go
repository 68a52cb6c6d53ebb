package dotlock_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// The public packages show users real declarations: no exported
// identifier is an alias (of an internal type or anything else) or a var
// that merely re-exports another package's value, and every one has a doc
// comment. The lock packages stay thin: they make handles; the handle
// types, errors and options are this package's.
func TestPublicAPI(t *testing.T) {
	exported := map[string]int{}
	for _, dir := range []string{".", "lockfile", "lockdir", "stale", "semaphore"} {
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(names) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, filepath.ToSlash(name), f, func() { exported[dir]++ })
		}
	}
	if n := exported["lockfile"] + exported["lockdir"]; n > 40 || exported["lockfile"] == 0 || exported["lockdir"] == 0 {
		t.Errorf("lockfile and lockdir export %d and %d identifiers; want both present, at most 40 together", exported["lockfile"], exported["lockdir"])
	}
}

func checkFile(t *testing.T, name string, f *ast.File, count func()) {
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || (d.Recv != nil && !exportedRecv(d.Recv)) {
				continue
			}
			count()
			if d.Doc == nil {
				t.Errorf("%s: %s has no doc comment", name, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				checkSpec(t, name, d, s, count)
			}
		}
	}
}

func checkSpec(t *testing.T, name string, d *ast.GenDecl, s ast.Spec, count func()) {
	switch s := s.(type) {
	case *ast.TypeSpec:
		if !s.Name.IsExported() {
			return
		}
		count()
		if s.Assign.IsValid() {
			t.Errorf("%s: type %s is an alias: go doc would show users no fields and no methods", name, s.Name.Name)
		}
		if s.Doc == nil && d.Doc == nil {
			t.Errorf("%s: type %s has no doc comment", name, s.Name.Name)
		}
	case *ast.ValueSpec:
		for i, n := range s.Names {
			if !n.IsExported() {
				continue
			}
			count()
			if s.Doc == nil && d.Doc == nil && s.Comment == nil {
				t.Errorf("%s: %s has no doc comment", name, n.Name)
			}
			if i < len(s.Values) {
				if _, ok := s.Values[i].(*ast.SelectorExpr); ok && d.Tok == token.VAR {
					t.Errorf("%s: var %s re-exports another package's value (a var any importer can reassign)", name, n.Name)
				}
			}
		}
	}
}

func exportedRecv(fl *ast.FieldList) bool {
	typ := fl.List[0].Type
	if st, ok := typ.(*ast.StarExpr); ok {
		typ = st.X
	}
	id, ok := typ.(*ast.Ident)
	return ok && id.IsExported()
}

// The library and the command read on a screen: no function over 80
// lines, no engine file over 450 (the engine is split by phase:
// internal/lockcore/doc.go).
func TestLibrarySizes(t *testing.T) {
	for _, dir := range []string{".", "lockfile", "lockdir", "stale", "semaphore", "internal/lockcore", "internal/config", "internal/handle", "cmd/dotlock"} {
		names, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if n := fset.File(f.Pos()).LineCount(); dir == "internal/lockcore" && n > 450 {
				t.Errorf("%s: %d lines, over 450", name, n)
			}
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok {
					if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > 80 {
						t.Errorf("%s: %s is %d lines, over 80", name, fd.Name.Name, n)
					}
				}
			}
		}
	}
}
