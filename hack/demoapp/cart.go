package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// cartTTL expires abandoned carts, so Redis memory stays flat however long
// the demo runs.
const cartTTL = 30 * time.Minute

// ordersTopic is where cart publishes checked-out orders.
const ordersTopic = "orders"

// cartLine is one SKU in a cart.
type cartLine struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// order is the Kafka message of one checkout, and a row of the orders table.
type order struct {
	ID         string     `json:"id"`
	User       string     `json:"user"`
	Lines      []cartLine `json:"lines"`
	TotalCents int64      `json:"total_cents"`
	Charge     string     `json:"charge"`
	Time       time.Time  `json:"time"`
}

// cartServer is the cart API: carts are Redis hashes cart:USER of SKU →
// quantity.
type cartServer struct {
	redis *redisClient
	kafka *kgo.Client
}

func runCart(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cart", flag.ContinueOnError)
	addr := fs.String("addr", envOr("CART_ADDR", ":8080"), "listen address (h2c and HTTP/1.1)")
	redisAddr := fs.String("redis", envOr("REDIS_ADDR", "redis:6379"), "Redis address")
	brokers := fs.String("brokers", envOr("KAFKA_BROKERS", "kafka:9092"), "Kafka seed brokers, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.DefaultProduceTopic(ordersTopic), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer kc.Close()
	cs := &cartServer{redis: newRedisClient(*redisAddr, 8), kafka: kc}
	defer cs.redis.close()

	srv := &http.Server{Handler: cs.routes()}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true) // the kubelet's probes speak HTTP/1.1
	srv.Protocols.SetUnencryptedHTTP2(true)
	return listenAndServe(ctx, *addr, srv)
}

func (cs *cartServer) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", cs.ready)
	mux.HandleFunc("GET /carts/{user}", cs.getCart)
	mux.HandleFunc("POST /carts/{user}/items", cs.addItem)
	mux.HandleFunc("DELETE /carts/{user}", cs.deleteCart)
	mux.HandleFunc("POST /carts/{user}/checkout", cs.checkout)
	return mux
}

// ready is the readiness probe: the cart is useless without Redis.
func (cs *cartServer) ready(w http.ResponseWriter, r *http.Request) {
	if _, err := cs.redis.do(r.Context(), "PING"); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	healthz(w, r)
}

func cartKey(user string) string { return "cart:" + user }

func (cs *cartServer) lines(ctx context.Context, user string) ([]cartLine, error) {
	reply, err := cs.redis.do(ctx, "HGETALL", cartKey(user))
	if err != nil {
		return nil, err
	}
	fields, _ := reply.([]any)
	lines := make([]cartLine, 0, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		sku, _ := fields[i].(string)
		qty, _ := fields[i+1].(string)
		n, err := strconv.ParseInt(qty, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cart %s: quantity of %s is %q", user, sku, qty)
		}
		lines = append(lines, cartLine{SKU: sku, Quantity: n})
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].SKU < lines[j].SKU })
	return lines, nil
}

func (cs *cartServer) getCart(w http.ResponseWriter, r *http.Request) {
	lines, err := cs.lines(r.Context(), r.PathValue("user"))
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": r.PathValue("user"), "lines": lines})
}

func (cs *cartServer) addItem(w http.ResponseWriter, r *http.Request) {
	var line cartLine
	if err := readJSON(w, r, &line); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if line.SKU == "" || line.Quantity <= 0 || line.Quantity > 100 {
		writeError(w, http.StatusUnprocessableEntity, "want a sku and a quantity of 1 to 100")
		return
	}
	key := cartKey(r.PathValue("user"))
	reply, err := cs.redis.do(r.Context(), "HINCRBY", key, line.SKU, strconv.FormatInt(line.Quantity, 10))
	if err == nil {
		_, err = cs.redis.do(r.Context(), "EXPIRE", key, strconv.Itoa(int(cartTTL.Seconds())))
	}
	qty, isInt := reply.(int64)
	if err == nil && !isInt {
		err = fmt.Errorf("redis: HINCRBY answered %T, want an integer", reply)
	}
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, cartLine{SKU: line.SKU, Quantity: qty})
}

func (cs *cartServer) deleteCart(w http.ResponseWriter, r *http.Request) {
	if _, err := cs.redis.do(r.Context(), "DEL", cartKey(r.PathValue("user"))); err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkout publishes the order (front has reserved stock and charged the
// card) to Kafka, then empties the cart.
func (cs *cartServer) checkout(w http.ResponseWriter, r *http.Request) {
	var o order
	if err := readJSON(w, r, &o); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	o.User = r.PathValue("user")
	o.Time = time.Now().UTC()
	value, err := json.Marshal(o)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	rec := &kgo.Record{Key: []byte(o.User), Value: value}
	if err := cs.kafka.ProduceSync(ctx, rec).FirstErr(); err != nil {
		slog.Warn("produce order", "err", err)
		writeError(w, http.StatusBadGateway, "kafka: "+err.Error())
		return
	}
	if _, err := cs.redis.do(ctx, "DEL", cartKey(o.User)); err != nil && !errors.Is(err, errNil) {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"order": o.ID, "partition": rec.Partition, "offset": rec.Offset})
}
