package hub

import (
	"context"
	"time"
)

// selfDeleteTimeout bounds one call of the self-delete func; retries back
// off from retryMin to retryMax.
const (
	selfDeleteTimeout = 30 * time.Second
	retryMin          = time.Second
	retryMax          = 30 * time.Second
)

// heartbeat records that a client is alive.
func (h *server) heartbeat() { h.lastBeat.Store(time.Now().UnixNano()) }

// idle returns how long no client has sent a heartbeat.
func (h *server) idle(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, h.lastBeat.Load()))
}

// idleLoop deletes the session once no client has sent a heartbeat for the
// idle timeout: that is what cleans up after a CLI killed with SIGKILL or
// a laptop that went away. A failed deletion is retried with backoff for
// as long as the session stays idle.
func (h *server) idleLoop(ctx context.Context) {
	timeout := h.opts.IdleTimeout
	if timeout == 0 {
		return
	}
	t := time.NewTicker(min(max(timeout/10, 10*time.Millisecond), time.Second))
	defer t.Stop()
	var nextTry time.Time
	backoff := retryMin
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			idle := h.idle(now)
			if idle < timeout {
				nextTry, backoff = time.Time{}, retryMin
				continue
			}
			if now.Before(nextTry) {
				continue
			}
			if h.selfDelete(ctx, idle) {
				return // the session is going away; nothing more to do
			}
			nextTry = now.Add(backoff)
			backoff = min(backoff*2, retryMax)
		}
	}
}

// selfDelete calls Options.SelfDelete and reports whether it succeeded.
func (h *server) selfDelete(ctx context.Context, idle time.Duration) bool {
	if h.opts.SelfDelete == nil {
		h.log.Warn("no client heartbeat; no self-delete configured", "idle", idle.Round(time.Millisecond))
		return true
	}
	h.log.Warn("no client heartbeat: deleting the session", "idle", idle.Round(time.Millisecond),
		"namespace", h.opts.Namespace)
	cctx, cancel := context.WithTimeout(ctx, selfDeleteTimeout)
	defer cancel()
	if err := h.opts.SelfDelete(cctx); err != nil {
		h.metrics.selfDeletes.WithLabelValues("error").Inc()
		h.log.Error("self-delete failed; will retry", "err", err)
		return false
	}
	h.metrics.selfDeletes.WithLabelValues("ok").Inc()
	return true
}
