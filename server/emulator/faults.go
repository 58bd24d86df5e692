package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// BodyFault is a way of mangling a response body. It applies to whatever
// the route answers (the normal reply, or the error of a status fault).
type BodyFault string

// The body faults.
const (
	// BodyNone leaves the body alone.
	BodyNone BodyFault = ""
	// BodyMalformed sends invalid JSON (the body in Python-repr quoting,
	// e.g. {'otp': 'abcd-1234-efgh-5678'}).
	BodyMalformed BodyFault = "malformed"
	// BodyTruncated sends the first half of the body under a Content-Length
	// for all of it, then closes the connection.
	BodyTruncated BodyFault = "truncated"
	// BodyOversized adds a padding field that makes the body over 2 MiB
	// (still valid JSON).
	BodyOversized BodyFault = "oversized"
	// BodyTrailingComma sends the body as the guide prints it, with a
	// trailing comma: {"otp": "...",}.
	BodyTrailingComma BodyFault = "trailing_comma"
	// BodyReset sends the status line, headers and half the body, then
	// resets the TCP connection (HTTP/2: resets the stream).
	BodyReset BodyFault = "reset"
	// BodyEmptyValues sets every string field to "" (on the OTP route:
	// {"otp": ""}).
	BodyEmptyValues BodyFault = "empty_values"
	// BodyEmptyOTP is BodyEmptyValues, named for its use on RouteOTP.
	BodyEmptyOTP = BodyEmptyValues
	// BodyMissingFields sends an empty object, {}.
	BodyMissingFields BodyFault = "missing_fields"
)

// oversizedPadding is the padding BodyOversized adds.
const oversizedPadding = 2<<20 + 1

// Valid reports whether b is a known body fault.
func (b BodyFault) Valid() bool {
	switch b {
	case BodyNone, BodyMalformed, BodyTruncated, BodyOversized, BodyTrailingComma, BodyReset, BodyEmptyValues, BodyMissingFields:
		return true
	}
	return false
}

// Fault is one injected misbehaviour of a route. Fields combine: Latency
// first, then Status (an error reply instead of the handler's; the handler
// does not run), then Body mangles whatever reply results.
type Fault struct {
	// Status, if not 0, is the HTTP status (400-599) to answer with, using
	// the guide's error body.
	Status int
	// Details and Retry fill the error body of a status fault; Details
	// defaults to the status text.
	Details string
	Retry   bool
	// RetryAfter, if positive, is sent as a Retry-After header in whole
	// seconds (rounded up).
	RetryAfter time.Duration
	// Body mangles the response body.
	Body BodyFault
	// Latency delays the answer; it is added to the route's SetLatency.
	// If the client gives up first the request counts as Cancelled.
	Latency time.Duration
}

// faultJSON is Fault on the admin API wire: durations as Go duration
// strings ("250ms").
type faultJSON struct {
	Status     int       `json:"status,omitempty"`
	Details    string    `json:"details,omitempty"`
	Retry      bool      `json:"retry,omitempty"`
	RetryAfter string    `json:"retry_after,omitempty"`
	Body       BodyFault `json:"body,omitempty"`
	Latency    string    `json:"latency,omitempty"`
}

// MarshalJSON encodes f with snake_case names and duration strings.
func (f Fault) MarshalJSON() ([]byte, error) {
	w := faultJSON{Status: f.Status, Details: f.Details, Retry: f.Retry, Body: f.Body}
	if f.RetryAfter != 0 {
		w.RetryAfter = f.RetryAfter.String()
	}
	if f.Latency != 0 {
		w.Latency = f.Latency.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes the form MarshalJSON writes and validates it.
func (f *Fault) UnmarshalJSON(data []byte) error {
	var w faultJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("decode fault: %w", err)
	}
	out := Fault{Status: w.Status, Details: w.Details, Retry: w.Retry, Body: w.Body}
	var err error
	if out.RetryAfter, err = parseDuration("retry_after", w.RetryAfter); err != nil {
		return err
	}
	if out.Latency, err = parseDuration("latency", w.Latency); err != nil {
		return err
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*f = out
	return nil
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("fault %s: %w", field, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("fault %s: negative duration %s", field, s)
	}
	return d, nil
}

// Validate reports a status outside 400-599, an unknown body fault or a
// negative duration.
func (f Fault) Validate() error {
	switch {
	case f.Status != 0 && (f.Status < 400 || f.Status > 599):
		return fmt.Errorf("fault status %d: want 0 or 400-599", f.Status)
	case !f.Body.Valid():
		return fmt.Errorf("fault body %q: unknown", f.Body)
	case f.Latency < 0 || f.RetryAfter < 0:
		return fmt.Errorf("fault durations must not be negative")
	}
	return nil
}

// routeFaults is the fault state of one route.
type routeFaults struct {
	latency   time.Duration
	script    []Fault
	rate      float64
	rateFault Fault
}

func (e *Emulator) routeFaultsLocked(route Route) *routeFaults {
	rf, ok := e.faults[route]
	if !ok {
		rf = new(routeFaults)
		e.faults[route] = rf
	}
	return rf
}

// SetLatency delays every answer on route by d (0 removes the delay).
func (e *Emulator) SetLatency(route Route, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.routeFaultsLocked(route).latency = max(d, 0)
}

// Script queues faults for route: the next len(faults) calls get them, in
// order, then the route behaves normally again. Calling Script again
// appends to the queue. A zero Fault in the queue means one normal call.
func (e *Emulator) Script(route Route, faults ...Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rf := e.routeFaultsLocked(route)
	rf.script = append(rf.script, faults...)
}

// SetFailureRate makes a random fraction rate (0-1) of calls to route that
// are not scripted fail with f. A rate of 0 turns random failures off.
func (e *Emulator) SetFailureRate(route Route, rate float64, f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rf := e.routeFaultsLocked(route)
	rf.rate = min(max(rate, 0), 1)
	rf.rateFault = f
}

// ResetFaults removes every latency, scripted fault and failure rate.
func (e *Emulator) ResetFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.faults)
}

// ResetRouteFaults removes route's latency, scripted faults and failure
// rate.
func (e *Emulator) ResetRouteFaults(route Route) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.faults, route)
}

// nextFault consumes the route's next scripted fault, or rolls its failure
// rate, and returns the fault and the total delay to apply.
func (e *Emulator) nextFault(route Route) (Fault, time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rf, ok := e.faults[route]
	if !ok {
		return Fault{}, 0
	}
	var f Fault
	switch {
	case len(rf.script) > 0:
		f = rf.script[0]
		rf.script = rf.script[1:]
	case rf.rate > 0 && rand.Float64() < rf.rate:
		f = rf.rateFault
	}
	return f, rf.latency + f.Latency
}

// faultReply is the error reply of a status fault.
func faultReply(f Fault) reply {
	details := f.Details
	if details == "" {
		details = http.StatusText(f.Status)
	}
	rep := reply{status: f.Status, body: errorBody{Success: false, Details: details, Retry: f.Retry}}
	if f.RetryAfter > 0 {
		secs := (f.RetryAfter + time.Second - 1) / time.Second
		rep.header = http.Header{"Retry-After": {strconv.FormatInt(int64(secs), 10)}}
	}
	return rep
}
