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

	_ "github.com/lib/pq" // the PostgreSQL driver: pure Go, speaks the wire protocol
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
	kafka    *kgo.Client
	stored   atomic.Int64
	bad      atomic.Int64
	dbReady  atomic.Bool
	reportDB time.Duration
}

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
	kc, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ConsumerGroup("orders-db"), kgo.ConsumeTopics(ordersTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer kc.Close()
	o := &orders{db: db, kafka: kc, reportDB: *report}

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
	o.consume(ctx)
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

func (o *orders) consume(ctx context.Context) {
	for ctx.Err() == nil {
		fetches := o.kafka.PollFetches(ctx)
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				slog.Warn("fetch", "topic", topic, "partition", p, "err", err)
			}
		})
		fetches.EachRecord(func(rec *kgo.Record) { o.store(ctx, rec) })
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
	_, err := o.db.ExecContext(ctx, insertOrder, ord.ID, ord.User, ord.TotalCents, string(lines), ord.Charge, ord.Time, rec.Partition, rec.Offset)
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
		return
	}
	slog.Info("orders in the last hour", "count", n, "total_cents", cents, "stored", o.stored.Load())
}
