package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lib/pq" // the PostgreSQL driver: pure Go, speaks the wire protocol
	"github.com/twmb/franz-go/pkg/kgo"
)

// ordersSchema is created at start; id is the order's, so a record consumed
// twice (at-least-once delivery) is stored once.
const ordersSchema = `CREATE TABLE IF NOT EXISTS orders (
	id          text PRIMARY KEY,
	user_name   text NOT NULL,
	total_cents bigint NOT NULL,
	lines       jsonb NOT NULL,
	charge      text NOT NULL,
	placed_at   timestamptz NOT NULL,
	partition   int NOT NULL,
	"offset"    bigint NOT NULL
)`

const insertOrder = `INSERT INTO orders (id, user_name, total_cents, lines, charge, placed_at, partition, "offset")
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`

// orders consumes the orders topic into PostgreSQL and reports on it: one
// Kafka consumer group, prepared statements, and a periodic simple query.
type orders struct {
	db       *sql.DB
	kafkaOpt []kgo.Opt
	stored   atomic.Int64
	bad      atomic.Int64
	dbReady  atomic.Bool
	reportDB time.Duration
}

// stuckAfter is how long fetches may fail without a record before the
// consumer starts over with a new client: the broker is in memory, and after
// it restarts its topic IDs and groups are new.
const stuckAfter = 15 * time.Second

func runOrders(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("orders", flag.ContinueOnError)
	brokers := fs.String("brokers", envOr("KAFKA_BROKERS", "kafka:9092"), "Kafka seed brokers, comma-separated")
	dsn := fs.String("pg", envOr("PG_DSN", "host=postgres user=shop dbname=shop sslmode=disable"), "PostgreSQL DSN; PGPASSWORD gives the password")
	addr := fs.String("addr", ":8080", "address of /healthz, /readyz and /stats")
	report := fs.Duration("report-every", 5*time.Second, "interval of the summary query")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := sql.Open("postgres", *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(4)
	db.SetConnMaxLifetime(5 * time.Minute) // new connections now and then: startup and auth on the wire
	o := &orders{db: db, reportDB: *report, kafkaOpt: []kgo.Opt{
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ConsumerGroup("orders-db"), kgo.ConsumeTopics(ordersTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", o.ready)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int64{"stored": o.stored.Load(), "bad": o.bad.Load()})
	})
	go func() {
		if err := listenAndServe(ctx, *addr, &http.Server{Handler: mux}); err != nil {
			slog.Error("http", "err", err)
		}
	}()
	if err := o.migrate(ctx); err != nil {
		return err
	}
	go every(ctx, o.reportDB, func() { o.report(ctx) })
	for ctx.Err() == nil {
		kc, err := kgo.NewClient(o.kafkaOpt...)
		if err != nil {
			return err
		}
		o.consume(ctx, kc)
		kc.Close()
	}
	return nil
}

// migrate creates the table, waiting for PostgreSQL to come up: the pods of
// the demo start in any order.
func (o *orders) migrate(ctx context.Context) error {
	for {
		_, err := o.db.ExecContext(ctx, ordersSchema)
		if err == nil {
			o.dbReady.Store(true)
			return nil
		}
		slog.Warn("postgres not ready", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

func (o *orders) ready(w http.ResponseWriter, r *http.Request) {
	if !o.dbReady.Load() {
		writeError(w, http.StatusServiceUnavailable, "table not created yet")
		return
	}
	if err := o.db.PingContext(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	healthz(w, r)
}

// consume stores records until ctx is done, or until fetches have failed
// for stuckAfter without a record in between.
func (o *orders) consume(ctx context.Context, kc *kgo.Client) {
	var failingSince time.Time
	for ctx.Err() == nil {
		fetches := kc.PollFetches(ctx)
		failed := false
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				failed = true
				slog.Warn("fetch", "topic", topic, "partition", p, "err", err)
			}
		})
		fetches.EachRecord(func(rec *kgo.Record) { o.store(ctx, rec) })
		switch {
		case !failed || fetches.NumRecords() > 0:
			failingSince = time.Time{}
		case failingSince.IsZero():
			failingSince = time.Now()
		case time.Since(failingSince) > stuckAfter:
			slog.Warn("kafka fetches keep failing: starting over with a new client")
			return
		}
		if failed {
			time.Sleep(time.Second) // do not spin on a broker that answers at once
		}
	}
}

func (o *orders) store(ctx context.Context, rec *kgo.Record) {
	var ord order
	if err := json.Unmarshal(rec.Value, &ord); err != nil || ord.ID == "" {
		o.bad.Add(1)
		slog.Warn("bad order record", "partition", rec.Partition, "offset", rec.Offset, "err", err)
		return
	}
	lines, _ := json.Marshal(ord.Lines) // a []cartLine always marshals
	insert := func() error {
		_, err := o.db.ExecContext(ctx, insertOrder, ord.ID, ord.User, ord.TotalCents, string(lines), ord.Charge, ord.Time, rec.Partition, rec.Offset)
		return err
	}
	err := insert()
	if isUndefinedTable(err) {
		// PostgreSQL restarted on an empty emptyDir: make the table again.
		if _, err = o.db.ExecContext(ctx, ordersSchema); err == nil {
			err = insert()
		}
	}
	if err != nil {
		o.bad.Add(1)
		slog.Warn("store order", "id", ord.ID, "err", err)
		return
	}
	o.stored.Add(1)
}

// report runs a simple-protocol query (no parameters), so the capture shows
// both of PostgreSQL's query protocols.
func (o *orders) report(ctx context.Context) {
	var n, cents int64
	row := o.db.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(total_cents), 0) FROM orders WHERE placed_at > now() - interval '1 hour'")
	if err := row.Scan(&n, &cents); err != nil {
		slog.Warn("report", "err", err)
		if isUndefinedTable(err) {
			_, _ = o.db.ExecContext(ctx, ordersSchema) // PostgreSQL restarted empty; an error shows in the next report
		}
		return
	}
	slog.Info("orders in the last hour", "count", n, "total_cents", cents, "stored", o.stored.Load())
}

// isUndefinedTable tells whether err is PostgreSQL's undefined_table (42P01).
func isUndefinedTable(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "42P01"
}
