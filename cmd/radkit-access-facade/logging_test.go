package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestGRPCLogger checks the grpclog.LoggerV2 that main installs: grpc-go's
// errors become records of the process log at level ERROR, and its
// information and warnings show only at the debug level, as grpc-go's
// default shows only errors.
func TestGRPCLogger(t *testing.T) {
	tests := []struct {
		name      string
		level     slog.Level
		log       func(g grpcLogger)
		wantLevel string // "" means nothing logged
		wantMsg   string
	}{
		{"error", slog.LevelInfo, func(g grpcLogger) { g.Errorf("[core] dial %s: refused", "x") }, "ERROR", "[core] dial x: refused"},
		{"errorln", slog.LevelInfo, func(g grpcLogger) { g.Errorln("a", "b") }, "ERROR", "a b"},
		{"warning hidden at info", slog.LevelInfo, func(g grpcLogger) { g.Warningf("w") }, "", ""},
		{"info hidden at info", slog.LevelInfo, func(g grpcLogger) { g.Info("i") }, "", ""},
		{"info shown at debug", slog.LevelDebug, func(g grpcLogger) { g.Infoln("i", 1) }, "DEBUG", "i 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(grpcLogger{l: newLogger(&buf, "json", tt.level)})
			out := strings.TrimSpace(buf.String())
			if tt.wantLevel == "" {
				if out != "" {
					t.Errorf("logged %s, want nothing", out)
				}
				return
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(out), &rec); err != nil {
				t.Fatalf("not one JSON record: %q: %v", out, err)
			}
			if rec["level"] != tt.wantLevel || rec["msg"] != tt.wantMsg {
				t.Errorf("record %v, want level %s msg %q", rec, tt.wantLevel, tt.wantMsg)
			}
		})
	}
	if (grpcLogger{l: newLogger(&bytes.Buffer{}, "json", slog.LevelInfo)}).V(0) {
		t.Error("V(0) true at the info level, want false")
	}
}
