// Command uireplay serves the dashboard the way a session does, for the
// browser tests of pkg/ui and for working on the dashboard: a real hub
// (pkg/hub, in process, with a random session token and worker TLS from
// its own CA), fed by a fake worker that replays the entries our engine
// dissected from testdata's recordings (testdata/golden) at a chosen rate,
// and answers pcap requests from a real ring store (pkg/store) holding the
// recordings' packets.
//
//	go run ./hack/uireplay [-rate 50] [-dashboard pkg/ui/dist]
//
// It prints what `kubectl shark ui` prints, and the address of a control
// API for tests:
//
//	Dashboard: http://127.0.0.1:PORT/?token=TOKEN
//	Control: http://127.0.0.1:PORT
//
// Control: POST /rate?n=ENTRIES_PER_SECOND; POST /restart?down=1s (stop
// the hub, wait, start it again on the same ports with the same token, or
// a new one with &newtoken=1);
// POST /drops?kernel=N&queue=N&entries=N (the worker's drop counters);
// GET /stats (JSON counters of the replay).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
	"github.com/kubectl-shark/kubectl-shark/pkg/ui"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "uireplay:", err)
		os.Exit(1)
	}
}

type config struct {
	api, control, testdata, dashboard string
	rate                              int
	verbose                           bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("uireplay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.api, "api", "127.0.0.1:0", "address of the hub's API and dashboard")
	fs.StringVar(&c.control, "control", "127.0.0.1:0", "address of the control API")
	fs.StringVar(&c.testdata, "testdata", "", "the repository's testdata directory (default: found from the working directory)")
	fs.StringVar(&c.dashboard, "dashboard", "", "serve the dashboard from this directory instead of the embedded build")
	fs.IntVar(&c.rate, "rate", 50, "entries per second the worker replays")
	fs.BoolVar(&c.verbose, "v", false, "log the hub's debug messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.testdata == "" {
		var err error
		if c.testdata, err = findTestdata(); err != nil {
			return err
		}
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	r, err := newReplay(c, log)
	if err != nil {
		return err
	}
	defer r.close()
	if err := r.startHub(); err != nil {
		return err
	}
	cl, err := net.Listen("tcp", c.control)
	if err != nil {
		return err
	}
	csrv := &http.Server{Handler: r.controlMux(), ReadHeaderTimeout: 5 * time.Second}
	go csrv.Serve(cl)
	defer csrv.Close()

	var wg sync.WaitGroup
	wg.Go(func() { r.workerLoop(ctx) })
	_, apiAddr := r.addrs()
	fmt.Fprintf(stdout, "Dashboard: http://%s/?token=%s\n", apiAddr, r.token())
	fmt.Fprintf(stdout, "Control: http://%s\n", cl.Addr())
	<-ctx.Done()
	wg.Wait()
	return r.stopHub()
}

// findTestdata walks up from the working directory to the module root.
func findTestdata() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: pass -testdata")
		}
		dir = parent
	}
}

// replay is the hub, its fake worker, and their counters.
type replay struct {
	cfg   config
	log   *slog.Logger
	pki   *hubtest.PKI
	recs  []recording
	store *store.Store
	tmp   string

	apiAddr, workerAddr string

	mu      sync.Mutex // guards cancel, done, the addresses and pki.token
	cancel  context.CancelFunc
	done    chan error
	restart sync.Mutex // one restart at a time

	rate                        atomic.Int64
	sent, batches, pcapRequests atomic.Uint64
	kernelDrops, queueDrops     atomic.Uint64
	entriesDropped, connections atomic.Uint64
	filterExpr                  atomic.Pointer[string]
}

const (
	node   = "node-a"
	worker = "shark-worker-node-a"
)

func newReplay(c config, log *slog.Logger) (*replay, error) {
	p, err := hubtest.GeneratePKI(24 * time.Hour)
	if err != nil {
		return nil, err
	}
	recs, err := loadRecordings(c.testdata, node, worker)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "uireplay-")
	if err != nil {
		return nil, err
	}
	st, err := store.Open(store.Options{Dir: tmp, Limit: 64 << 20})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if err := fillStore(st, recs); err != nil {
		st.Close()
		os.RemoveAll(tmp)
		return nil, err
	}
	r := &replay{cfg: c, log: log, pki: p, recs: recs, store: st, tmp: tmp, apiAddr: c.api, workerAddr: "127.0.0.1:0"}
	r.rate.Store(int64(c.rate))
	return r, nil
}

func (r *replay) close() {
	r.store.Close()
	os.RemoveAll(r.tmp)
}

// startHub runs the hub on the replay's addresses; the first start picks
// free ports, later ones reuse them, as a restarted hub pod keeps its
// port-forward's target.
func (r *replay) startHub() error {
	workerAddr, apiAddr := r.addrs()
	wl, err := net.Listen("tcp", workerAddr)
	if err != nil {
		return err
	}
	al, err := net.Listen("tcp", apiAddr)
	if err != nil {
		wl.Close()
		return err
	}
	opts := hub.NewOptions()
	opts.WorkerListener, opts.APIListener = wl, al
	opts.Certificate, opts.Token = &r.pki.Cert, r.token()
	opts.SessionID, opts.Namespace = "replay", "shark-replay"
	opts.IdleTimeout = 0
	opts.StatsInterval = time.Second
	opts.Logger = r.log
	opts.Dashboard = ui.Files()
	if r.cfg.dashboard != "" {
		opts.Dashboard = http.Dir(r.cfg.dashboard)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx, opts) }()
	r.mu.Lock()
	r.cancel, r.done = cancel, done
	r.workerAddr, r.apiAddr = wl.Addr().String(), al.Addr().String()
	r.mu.Unlock()
	return nil
}

// token returns the session token.
func (r *replay) token() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pki.Token
}

// newToken gives the session a new token, as a new session on the same
// port would have.
func (r *replay) newToken() error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pki.Token = hex.EncodeToString(b[:])
	return nil
}

// addrs returns the hub's worker and API addresses.
func (r *replay) addrs() (worker, api string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.workerAddr, r.apiAddr
}

func (r *replay) stopHub() error {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		return errors.New("the hub did not stop within 15s")
	}
}

func (r *replay) controlMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /rate", func(w http.ResponseWriter, req *http.Request) {
		n, err := strconv.Atoi(req.URL.Query().Get("n"))
		if err != nil || n < 0 || n > 200_000 {
			http.Error(w, "want n, entries per second, 0 to 200000", http.StatusBadRequest)
			return
		}
		r.rate.Store(int64(n))
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, req *http.Request) {
		down, err := time.ParseDuration(req.URL.Query().Get("down"))
		if err != nil {
			down = time.Second
		}
		r.restart.Lock()
		defer r.restart.Unlock()
		if err := r.stopHub(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		time.Sleep(down)
		if req.URL.Query().Get("newtoken") != "" {
			if err := r.newToken(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		if err := r.startHub(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /drops", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		for name, c := range map[string]*atomic.Uint64{"kernel": &r.kernelDrops, "queue": &r.queueDrops, "entries": &r.entriesDropped} {
			if s := q.Get(name); s != "" {
				n, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					http.Error(w, "bad "+name, http.StatusBadRequest)
					return
				}
				c.Store(n)
			}
		}
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		f := ""
		if p := r.filterExpr.Load(); p != nil {
			f = *p
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"rate": r.rate.Load(), "sent": r.sent.Load(), "batches": r.batches.Load(),
			"pcap_requests": r.pcapRequests.Load(), "connections": r.connections.Load(),
			"worker_filter": f, "recordings": len(r.recs),
		})
	})
	return mux
}
