package database

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// setReturningFunction finds a call of a set-returning function whose
// single column is read by name.
var setReturningFunction = regexp.MustCompile(`(?i)\b(unnest|generate_series|jsonb_array_elements|json_array_elements|jsonb_array_elements_text|json_array_elements_text|jsonb_object_keys|json_object_keys|regexp_split_to_table)\s*\(`)

// aliasAfterCall is what may follow the call's closing parenthesis: an
// alias, and then perhaps its column list.
var aliasAfterCall = regexp.MustCompile(`(?i)^\s*(?:AS\s+)?([A-Za-z_][A-Za-z0-9_]*)(\s*\()?`)

// notAnAlias are the words that can follow a call without naming it.
var notAnAlias = map[string]bool{
	"where": true, "on": true, "join": true, "left": true, "inner": true, "cross": true,
	"order": true, "group": true, "limit": true, "with": true, "union": true, "having": true,
	"and": true, "or": true, "returning": true, "on_conflict": true, "from": true, "as": true,
}

// unnamedColumns returns, for each set-returning function in sql given a
// table alias without a column list, the text of the call.
//
// CockroachDB names the column of a single-column set-returning function
// after the table alias; PostgreSQL keeps the function's own column name
// (value, for jsonb_array_elements). `jsonb_array_elements(x) AS e` then
// `e.value` works on one engine only: a column list makes them agree.
func unnamedColumns(sql string) []string {
	var found []string
	for _, loc := range setReturningFunction.FindAllStringIndex(sql, -1) {
		end := closingParen(sql, loc[1]-1)
		if end < 0 {
			continue
		}
		m := aliasAfterCall.FindStringSubmatch(sql[end+1:])
		if m == nil || notAnAlias[strings.ToLower(m[1])] || m[2] != "" {
			continue
		}
		found = append(found, sql[loc[0]:end+1])
	}
	return found
}

// closingParen returns the index of the parenthesis closing the one at open.
func closingParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func TestUnnamedColumnsFindsAliasesWithoutColumnLists(t *testing.T) {
	cases := []struct {
		sql  string
		want int
	}{
		{`SELECT SUM((e.value->>'open')::INT8) FROM jsonb_array_elements(b.lots) AS e`, 1},
		{`SELECT SUM((e.value->>'open')::INT8) FROM jsonb_array_elements(COALESCE(b.lots, '[]'::JSONB)) AS e (value)`, 0},
		{`SELECT g FROM generate_series(1, $1) g`, 1},
		{`SELECT g FROM generate_series(1, $1) AS s(g)`, 0},
		{`FROM unnest($1::TEXT[], $2::INT8[]) AS v (code, delta)`, 0},
		{`SELECT * FROM unnest($1::TEXT[], $2::INT8[]))`, 0},
		{`SELECT * FROM unnest($1::UUID[]) WHERE true`, 0},
		{`JOIN unnest($1::UUID[], $2::TEXT[]) AS a(id, key) ON t.id = a.id`, 0},
		{`JOIN unnest($1::UUID[]) u ON t.id = u`, 1},
	}
	for _, c := range cases {
		if got := unnamedColumns(c.sql); len(got) != c.want {
			t.Errorf("unnamedColumns(%q) = %q, want %d", c.sql, got, c.want)
		}
	}
}

// TestSetReturningFunctionsNameTheirColumns reads every Go and SQL file of
// the repository: a set-returning function with a table alias must name
// its columns, so that both engines read the same column names.
func TestSetReturningFunctionsNameTheirColumns(t *testing.T) {
	root := filepath.Join("..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".sql") || strings.HasSuffix(path, filepath.Join("database", "portable_sql_test.go")) {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for _, call := range unnamedColumns(string(src)) {
			t.Errorf("%s: %s has a table alias but no column list: write AS alias (column, ...)", path, call)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked %d files: the walk did not reach the repository", checked)
	}
}
