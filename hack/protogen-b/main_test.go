package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	a, b := Log{}, Log{}
	a.entry("mysql", "COM_QUERY", "OK")
	a.count("mysql", "rows", 3)
	b.entry("mysql", "COM_QUERY OK")
	b.entry("tls", "TLS1.3", "", "OK") // empty parts leave no double space
	for name, l := range map[string]Log{"a.json": a, "b.json": b} {
		if err := l.write(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "sum.json")
	if err := merge([]string{"-o", out, filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")}); err != nil {
		t.Fatal(err)
	}
	got, err := readLog(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Log{
		"mysql": {Entries: map[string]int{"COM_QUERY OK": 2}, Counters: map[string]int64{"rows": 3}},
		"tls":   {Entries: map[string]int{"TLS1.3 OK": 1}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged (-want +got):\n%s", diff)
	}
}

func TestMariadbLog(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sql := write("s.sql", "use shop\nSELECT 1;\nSELECT * FROM nope;\nINSERT INTO t VALUES (1), (2);\n")
	stdout := write("out", "--------------\nSELECT 1\n--------------\n\n1\n1\n1 row in set (0.000 sec)\n\n"+
		"--------------\nINSERT INTO t VALUES (1), (2)\n--------------\n\nQuery OK, 2 rows affected (0.001 sec)\nRecords: 2\n\nBye\n")
	stderr := write("err", "ERROR 1146 (42S02) at line 3: Table 'shop.nope' doesn't exist\n")
	out := filepath.Join(dir, "log.json")
	if err := mariadbLog([]string{"-sql", sql, "-stdout", stdout, "-stderr", stderr, "-log", out}); err != nil {
		t.Fatal(err)
	}
	got, err := readLog(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Log{"mysql": {
		Entries: map[string]int{"Handshake OK": 1, "COM_QUERY OK": 3, "COM_INIT_DB OK": 1,
			"COM_QUERY ERR 1146": 1, "COM_QUIT": 1},
		Counters: map[string]int64{"rows": 2, "affected": 2},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}
