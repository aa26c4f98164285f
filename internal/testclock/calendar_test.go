package testclock

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// clockTakers are the constructors whose last argument is a clock, where
// nil means time.Now.
var clockTakers = map[string]bool{"members.New": true, "partners.New": true, "programmes.New": true,
	"apikeys.New": true, "expiry.New": true}

// clockConfigs are the option structs with a Clock field, where a missing
// Clock means time.Now.
var clockConfigs = map[string]bool{"ledger.Options": true, "finance.Options": true, "rpc.Config": true,
	"financeweb.Config": true}

// TestTestsReadTheCalendarOnlyThroughTheTestClock holds every test in the
// repository to the rule of this package: a test builds nothing on the
// wall clock (no nil clock, no Options or Config without a Clock, no
// time.Now as a clock) and reads time.Now only to measure a duration
// (start := time.Now(), then time.Since(start)) or to set a network
// deadline. What reads the real calendar passes on the day it is written
// and fails on another; LOYALTY_TEST_NOW cannot move it.
func TestTestsReadTheCalendarOnlyThroughTheTestClock(t *testing.T) {
	root := moduleRoot(t)
	var found []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "tools") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		found = append(found, calendarReads(fset, root, f)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Error(f)
	}
}

// TestCalendarReadsAreFound: the rule's own cases, each read found or
// allowed as it should be.
func TestCalendarReadsAreFound(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		found      int
	}{
		{"a start time for a duration", `start := time.Now(); _ = time.Since(start)`, 0},
		{"a network deadline", `conn.SetDeadline(time.Now().Add(time.Second))`, 0},
		{"the test clock", `l := ledger.New(db, ledger.Options{Clock: testclock.Wall}); _ = members.New(l, clock.Now)`, 0},
		{"a date from the wall clock", `at := time.Now().Add(-time.Hour)`, 1},
		{"the wall clock as an argument", `s.WritableAt(ctx, "P", time.Now())`, 1},
		{"the wall clock as a clock", `l := ledger.New(db, ledger.Options{Clock: time.Now})`, 1},
		{"a nil clock", `store := members.New(l, nil)`, 1},
		{"options without a clock", `l := ledger.New(db, ledger.Options{})`, 1},
		{"a config without a clock", `srv, _ := rpc.New(rpc.Config{Ledger: l})`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "package p\nfunc f() {\n" + tc.body + "\n}\n"
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "/m/p/x_test.go", src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			if got := calendarReads(fset, "/m", f); len(got) != tc.found {
				t.Errorf("found %q, want %d", got, tc.found)
			}
		})
	}
}

// calendarReads lists what in f reads the real calendar.
func calendarReads(fset *token.FileSet, root string, f *ast.File) []string {
	var found []string
	report := func(n ast.Node, format string, args ...any) {
		pos := fset.Position(n.Pos())
		rel, err := filepath.Rel(root, pos.Filename)
		if err != nil {
			rel = pos.Filename
		}
		found = append(found, fmt.Sprintf("%s:%d: %s", rel, pos.Line, fmt.Sprintf(format, args...)))
	}
	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		parent := func(up int) ast.Node {
			if len(stack) < up {
				return nil
			}
			return stack[len(stack)-up]
		}
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if qualified(n) != "time.Now" {
				break
			}
			call, ok := parent(1).(*ast.CallExpr)
			if !ok || call.Fun != n {
				report(n, "time.Now as a clock: pass testclock.Wall or a testclock.Clock's Now")
			} else if !durationStart(call, parent(2)) && !networkDeadline(parent(2), parent(3), parent(4)) {
				report(n, "time.Now() read as a date: read the calendar through testclock (Wall, or a Clock)")
			}
		case *ast.CallExpr:
			if name := qualified(n.Fun); clockTakers[name] && len(n.Args) > 0 {
				if last, ok := n.Args[len(n.Args)-1].(*ast.Ident); ok && last.Name == "nil" {
					report(n, "%s with a nil clock, which means time.Now: pass the test's clock", name)
				}
			}
		case *ast.CompositeLit:
			if name := qualified(n.Type); clockConfigs[name] && !slices.ContainsFunc(n.Elts, isClockField) {
				report(n, "%s without a Clock, which means time.Now: give it the test's clock", name)
			}
		}
		stack = append(stack, n)
		return true
	})
	return found
}

// durationStart: `start := time.Now()`, the start of a measured duration.
func durationStart(call *ast.CallExpr, parent ast.Node) bool {
	assign, ok := parent.(*ast.AssignStmt)
	return ok && len(assign.Rhs) == 1 && assign.Rhs[0] == call
}

// networkDeadline: `conn.SetDeadline(time.Now().Add(d))` and the like;
// add is the selector of Add on the call, addCall its call, setter what
// takes it.
func networkDeadline(add, addCall, setter ast.Node) bool {
	sel, ok := add.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Add" {
		return false
	}
	set, ok := setter.(*ast.CallExpr)
	if !ok || !slices.Contains(set.Args, addCall.(ast.Expr)) {
		return false
	}
	name, ok := set.Fun.(*ast.SelectorExpr)
	return ok && strings.HasPrefix(name.Sel.Name, "Set") && strings.HasSuffix(name.Sel.Name, "Deadline")
}

func isClockField(e ast.Expr) bool {
	kv, ok := e.(*ast.KeyValueExpr)
	if !ok {
		return false
	}
	key, ok := kv.Key.(*ast.Ident)
	return ok && key.Name == "Clock"
}

// qualified is "pkg.Name" for a selector on a package name, else "".
func qualified(e ast.Expr) string {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok {
		return ""
	}
	return pkg.Name + "." + sel.Sel.Name
}

// moduleRoot is the directory of the repository's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = up
	}
}
