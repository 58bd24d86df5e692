package emulator

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// write sends rep, mangled by bf.
func (e *Emulator) write(w http.ResponseWriter, rep reply, bf BodyFault) {
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	if rep.body == nil {
		if bf == BodyReset {
			e.reset(w, rep.status, nil)
			return
		}
		w.WriteHeader(rep.status)
		return
	}
	raw, err := json.Marshal(rep.body)
	if err != nil {
		e.log.Error("emulator: encode response", "err", err)
		rep, raw = errorReply(http.StatusInternalServerError, "Internal Server Error"), []byte(`{"success":false,"details":"Internal Server Error","retry":false}`)
	}
	body, err := mangle(raw, bf)
	if err != nil {
		e.log.Error("emulator: apply body fault", "fault", bf, "err", err)
		body = raw
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	switch bf {
	case BodyTruncated:
		// Declared length exceeds what is sent; net/http then closes the
		// connection, so the client sees an unexpected EOF.
		w.WriteHeader(rep.status)
		_, _ = w.Write(body[:len(body)/2])
		return
	case BodyReset:
		e.reset(w, rep.status, body)
		return
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(body)
}

// mangle applies the content-changing body faults to a JSON object.
func mangle(raw []byte, bf BodyFault) ([]byte, error) {
	switch bf {
	case BodyMalformed:
		return bytes.ReplaceAll(raw, []byte(`"`), []byte(`'`)), nil
	case BodyMissingFields:
		return []byte(`{}`), nil
	case BodyEmptyValues:
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("empty values: %w", err)
		}
		for k, v := range m {
			if _, ok := v.(string); ok {
				m[k] = ""
			}
		}
		return json.Marshal(m)
	case BodyOversized:
		pad := `{"padding":"` + strings.Repeat("x", oversizedPadding) + `"`
		if rest := bytes.TrimPrefix(raw, []byte("{")); !bytes.Equal(bytes.TrimSpace(rest), []byte("}")) {
			pad += ","
		}
		return append([]byte(pad), bytes.TrimPrefix(raw, []byte("{"))...), nil
	case BodyTrailingComma:
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return nil, fmt.Errorf("trailing comma: %w", err)
		}
		b := bytes.TrimRight(buf.Bytes(), "\n")
		b = bytes.TrimSuffix(b, []byte("\n}"))
		return append(b, ",\n}"...), nil
	}
	return raw, nil
}

// reset writes the response head and half of body, then resets the
// connection. Where the connection cannot be hijacked (HTTP/2) it aborts
// the handler, which resets the stream.
func (e *Emulator) reset(w http.ResponseWriter, status int, body []byte) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if body != nil {
		fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", status, http.StatusText(status), len(body))
		_, _ = buf.Write(body[:len(body)/2])
		_ = buf.Flush()
	}
	abortConn(conn)
}

// abortConn closes conn with SO_LINGER 0 so the peer gets a TCP RST.
func abortConn(conn net.Conn) {
	under := conn
	if tc, ok := conn.(*tls.Conn); ok {
		under = tc.NetConn()
	}
	if tcp, ok := under.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = under.Close()
}
