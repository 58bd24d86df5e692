package server

import (
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
)

// CallLog says which calls get a per-call log line ("finished call"):
// every failed call always does; successful ones all, none, or one in N.
// A stream its caller ended (cancelled, or its own deadline) counts as
// successful. Audit records are not per-call lines: CallLog never drops
// them. The zero CallLog is CallLogAll.
type CallLog struct {
	// every is 0 for all, -1 for none, N > 1 for one in N.
	every int
}

// The policies without a rate.
var (
	// CallLogAll logs every call.
	CallLogAll = CallLog{}
	// CallLogErrors logs failed calls only.
	CallLogErrors = CallLog{every: -1}
)

// CallLogSample logs every failed call and one successful call in every
// n, counted per replica and per kind of call (unary, streaming): the
// first, the n+1th, and so on. Each of those lines carries "sampled": n,
// the number of successful calls it stands for. n of 1 or less is
// CallLogAll.
func CallLogSample(n int) CallLog {
	if n <= 1 {
		return CallLogAll
	}
	return CallLog{every: n}
}

// ParseCallLog parses "all", "errors" or "sample:N" (N an integer of at
// least 1).
func ParseCallLog(s string) (CallLog, error) {
	switch s {
	case "all":
		return CallLogAll, nil
	case "errors":
		return CallLogErrors, nil
	}
	if n, ok := strings.CutPrefix(s, "sample:"); ok {
		if i, err := strconv.Atoi(n); err == nil && i >= 1 {
			return CallLogSample(i), nil
		}
	}
	return CallLog{}, errors.New("want all, errors or sample:N (log one successful call in N, N at least 1)")
}

// String is the form ParseCallLog reads.
func (c CallLog) String() string {
	switch {
	case c.every == 0:
		return "all"
	case c.every < 0:
		return "errors"
	}
	return "sample:" + strconv.Itoa(c.every)
}

// sampler returns the decision of c for each finished call: whether to
// log it, and for a sampled success, how many calls its line stands for.
func (c CallLog) sampler() func(success bool) (sample int, log bool) {
	var n atomic.Uint64
	return func(success bool) (int, bool) {
		switch {
		case !success || c.every == 0:
			return 0, true
		case c.every < 0:
			return 0, false
		}
		return c.every, (n.Add(1)-1)%uint64(c.every) == 0
	}
}
