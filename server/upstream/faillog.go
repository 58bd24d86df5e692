package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// failureLogInterval is how often a failureLog logs one class of failure.
const failureLogInterval = time.Minute

// failureLog logs failed discoveries and token fetches: every class of
// failure (operation and HTTP status, transport failure or malformed
// answer) as soon as it first happens, from the first fetch at start on,
// and then at most once per interval, with the number of failures of that
// class left out since its last line. Readiness alone would not tell an
// operator why the facade is not ready: it logs transitions, and a Client
// whose credentials are refused from the start never makes one.
//
// The errors it logs carry no secret (see package doc).
type failureLog struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	classes map[string]*failureClass
}

// failureClass is the log state of one class of failure.
type failureClass struct {
	logged     time.Time // when its last line was written
	suppressed int       // failures left out since
}

func newFailureLog(log *slog.Logger) *failureLog {
	return &failureLog{log: log, interval: failureLogInterval, now: time.Now, classes: make(map[string]*failureClass)}
}

// failed records a failure of op (OpDiscovery or OpToken) and logs it
// unless its class was logged less than an interval ago.
func (l *failureLog) failed(op Op, err error) {
	class := string(op) + ": " + failureKind(err)
	l.mu.Lock()
	now := l.now()
	c := l.classes[class]
	if c == nil {
		c = &failureClass{}
		l.classes[class] = c
	} else if now.Sub(c.logged) < l.interval {
		c.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := c.suppressed
	c.logged, c.suppressed = now, 0
	l.mu.Unlock()

	level := slog.LevelWarn
	if IsSetupFailure(err) {
		level = slog.LevelError // the credentials or configuration: no retry helps
	}
	l.log.Log(context.Background(), level, "upstream: "+string(op)+" failed",
		"class", class, "error", err, "suppressed", suppressed, "log_interval", l.interval)
}

// succeeded records a success of op: the failure classes of op are
// forgotten, so that the next failure is logged at once, and the failures
// that were left out since their last line are counted in one line.
func (l *failureLog) succeeded(op Op) {
	prefix := string(op) + ": "
	l.mu.Lock()
	forgotten, suppressed := 0, 0
	for class, c := range l.classes {
		if strings.HasPrefix(class, prefix) {
			forgotten++
			suppressed += c.suppressed
			delete(l.classes, class)
		}
	}
	l.mu.Unlock()
	if forgotten > 0 {
		l.log.Info("upstream: "+string(op)+" succeeded again", "suppressed", suppressed)
	}
}

// failureKind names the kind of a failure: the HTTP status of the
// upstream's answer, a transport failure or a malformed answer.
func failureKind(err error) string {
	switch {
	case errors.Is(err, ErrMalformedResponse):
		return "malformed response"
	case StatusCode(err) != 0:
		return fmt.Sprintf("HTTP %d", StatusCode(err))
	case IsUnanswered(err):
		return "transport"
	}
	return "other"
}
