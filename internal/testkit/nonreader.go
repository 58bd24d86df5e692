package testkit

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// OpenNonReadingGRPC opens streams calls of the gRPC method fullMethod
// ("/pkg.Service/Method"), each sending the encoded request req, on one
// raw HTTP/2 connection to addr (plaintext) that announces a zero stream
// window and never reads: the server can send none of their messages, so
// that its sends soon wait on flow control, and never learns how they
// ended. The connection is closed when tb ends.
func OpenNonReadingGRPC(tb testing.TB, addr, fullMethod string, req []byte, streams int) net.Conn {
	tb.Helper()
	conn := DialNonReader(tb, addr)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		tb.Fatalf("HTTP/2 preface to %s: %v", addr, err)
	}
	fr := http2.NewFramer(conn, nil)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		tb.Fatalf("HTTP/2 settings to %s: %v", addr, err)
	}
	msg := make([]byte, 5, 5+len(req)) // gRPC framing: not compressed, length
	binary.BigEndian.PutUint32(msg[1:], uint32(len(req)))
	msg = append(msg, req...)
	for i := range streams {
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		for _, f := range []hpack.HeaderField{
			{Name: ":method", Value: "POST"},
			{Name: ":scheme", Value: "http"},
			{Name: ":path", Value: fullMethod},
			{Name: ":authority", Value: addr},
			{Name: "content-type", Value: "application/grpc"},
			{Name: "te", Value: "trailers"},
		} {
			if err := enc.WriteField(f); err != nil {
				tb.Fatalf("HPACK: %v", err)
			}
		}
		id := uint32(2*i + 1) // client streams are odd
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndHeaders: true}); err != nil {
			tb.Fatalf("HTTP/2 headers to %s: %v", addr, err)
		}
		if err := fr.WriteData(id, true, msg); err != nil {
			tb.Fatalf("HTTP/2 data to %s: %v", addr, err)
		}
	}
	return conn
}
