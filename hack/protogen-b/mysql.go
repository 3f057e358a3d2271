package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQL log keys: "<command> <status>" as the dissector names them
// (COM_QUERY OK, COM_QUERY ERR 1146, Handshake OK, COM_STMT_CLOSE with no
// status: the server does not answer it), and the counters "rows" (rows
// read by the client) and "affected".

// mysqlClient runs go-sql-driver/mysql over one connection: text queries,
// server-side prepared statements (binary protocol), errors, a procedure
// with two result sets, and a large result.
func mysqlClient(args []string) error {
	fs := flag.NewFlagSet("mysql-client", flag.ContinueOnError)
	dsn := fs.String("dsn", "", "go-sql-driver DSN")
	logPath := fs.String("log", "", "log file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sql.Open("mysql", *dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	l := Log{}
	l.entry("mysql", "Handshake OK")
	c := &sqlClient{ctx: ctx, conn: conn, log: l}
	c.run()
	// Closing the connection sends COM_QUIT.
	if err := conn.Close(); err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	l.entry("mysql", "COM_QUIT")
	if c.err != nil {
		return c.err
	}
	return l.write(*logPath)
}

type sqlClient struct {
	ctx  context.Context
	conn *sql.Conn
	log  Log
	err  error // the first unexpected failure
}

func (c *sqlClient) fail(err error) {
	if c.err == nil && err != nil {
		c.err = err
	}
}

// status is the dissector's status for the outcome err.
func status(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return "ERR " + strconv.Itoa(int(me.Number))
	}
	return "OK"
}

// query runs a text-protocol query and counts its rows, over every result
// set.
func (c *sqlClient) query(q string, wantErr bool) {
	rows, err := c.conn.QueryContext(c.ctx, q)
	if err == nil {
		n := int64(0)
		for {
			for rows.Next() {
				n++
			}
			if !rows.NextResultSet() {
				break
			}
		}
		err = rows.Err()
		rows.Close()
		c.log.count("mysql", "rows", n)
	}
	if (err != nil) != wantErr {
		c.fail(fmt.Errorf("%s: %v", q, err))
	}
	c.log.entry("mysql", "COM_QUERY", status(err))
}

func (c *sqlClient) exec(q string) {
	res, err := c.conn.ExecContext(c.ctx, q)
	c.fail(err)
	if err == nil {
		n, _ := res.RowsAffected()
		c.log.count("mysql", "affected", n)
	}
	c.log.entry("mysql", "COM_QUERY", status(err))
}

// prepare prepares q on the server (COM_STMT_PREPARE).
func (c *sqlClient) prepare(q string, wantErr bool) *sql.Stmt {
	st, err := c.conn.PrepareContext(c.ctx, q)
	if (err != nil) != wantErr {
		c.fail(fmt.Errorf("prepare %s: %v", q, err))
	}
	c.log.entry("mysql", "COM_STMT_PREPARE", status(err))
	return st
}

// execute runs a prepared query (COM_STMT_EXECUTE) and counts its rows.
func (c *sqlClient) execute(st *sql.Stmt, args ...any) {
	rows, err := st.QueryContext(c.ctx, args...)
	if err == nil {
		n := int64(0)
		for rows.Next() {
			n++
		}
		err = rows.Err()
		rows.Close()
		c.log.count("mysql", "rows", n)
	}
	c.fail(err)
	c.log.entry("mysql", "COM_STMT_EXECUTE", status(err))
}

func (c *sqlClient) executeExec(st *sql.Stmt, args ...any) {
	res, err := st.ExecContext(c.ctx, args...)
	c.fail(err)
	if err == nil {
		n, _ := res.RowsAffected()
		c.log.count("mysql", "affected", n)
	}
	c.log.entry("mysql", "COM_STMT_EXECUTE", status(err))
}

func (c *sqlClient) close(st *sql.Stmt) {
	c.fail(st.Close())
	c.log.entry("mysql", "COM_STMT_CLOSE")
}

func (c *sqlClient) run() {
	c.fail(c.conn.PingContext(c.ctx))
	c.log.entry("mysql", "COM_PING OK")
	c.query("SELECT id, name, price FROM items ORDER BY id", false)
	c.query("SELECT * FROM missing_table", true)
	c.query("CALL two_results()", false)
	c.query("SELECT seq FROM seq_1_to_500", false)

	byPrice := c.prepare("SELECT id, name FROM items WHERE price > ? ORDER BY id", false)
	for _, p := range []float64{0, 5, 1000} {
		c.execute(byPrice, p)
	}
	c.close(byPrice)

	insert := c.prepare("INSERT INTO items (name, price) VALUES (?, ?)", false)
	c.executeExec(insert, "gizmo", 3.5)
	c.executeExec(insert, "gadget", 42.0)
	c.close(insert)

	c.prepare("SELEC broken FROM", true)
	c.exec("UPDATE items SET price = price + 1 WHERE name IN ('gizmo', 'gadget')")
}

// mariadbLog turns a `mariadb --batch -vvv --force` session into a log.
// The session file holds one statement per line; every statement is one
// COM_QUERY, answered OK unless the CLI's stderr says "ERROR <code> ... at
// line <n>". The CLI's `use DB` command sends SELECT DATABASE() (one row)
// and then COM_INIT_DB. Rows and affected rows are what the CLI printed
// ("N rows in set", "Query OK, N rows affected").
func mariadbLog(args []string) error {
	fs := flag.NewFlagSet("mariadb-log", flag.ContinueOnError)
	sqlPath := fs.String("sql", "", "the session, one statement per line")
	stdout := fs.String("stdout", "", "the CLI's standard output")
	stderr := fs.String("stderr", "", "the CLI's standard error")
	logPath := fs.String("log", "", "log file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	errs := map[int]string{} // input line → error code
	errRe := regexp.MustCompile(`^ERROR (\d+) \(\w+\) at line (\d+)`)
	if err := eachLine(*stderr, func(line string) {
		if m := errRe.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[2])
			errs[n] = m[1]
		}
	}); err != nil {
		return err
	}
	l := Log{}
	l.entry("mysql", "Handshake OK")
	n := 0
	if err := eachLine(*sqlPath, func(line string) {
		n++
		if strings.TrimSpace(line) == "" {
			return
		}
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "use ") {
			l.entry("mysql", "COM_QUERY OK")
			l.count("mysql", "rows", 1)
			l.entry("mysql", "COM_INIT_DB OK")
			return
		}
		st := "OK"
		if code, ok := errs[n]; ok {
			st = "ERR " + code
		}
		l.entry("mysql", "COM_QUERY", st)
	}); err != nil {
		return err
	}
	l.entry("mysql", "COM_QUIT")
	rowsRe := regexp.MustCompile(`^(\d+) rows? in set`)
	affectedRe := regexp.MustCompile(`^Query OK, (\d+) rows? affected`)
	if err := eachLine(*stdout, func(line string) {
		if m := rowsRe.FindStringSubmatch(line); m != nil {
			k, _ := strconv.Atoi(m[1])
			l.count("mysql", "rows", int64(k))
		}
		if m := affectedRe.FindStringSubmatch(line); m != nil {
			k, _ := strconv.Atoi(m[1])
			l.count("mysql", "affected", int64(k))
		}
	}); err != nil {
		return err
	}
	return l.write(*logPath)
}

func eachLine(path string, f func(string)) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f(sc.Text())
	}
	return sc.Err()
}
