package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseStatTicks(t *testing.T) {
	// The command name may hold spaces and parentheses; utime and stime are
	// fields 14 and 15.
	stat := "4242 (radkit (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 9 0 100 1000 200\n"
	got, err := parseStatTicks(stat)
	if err != nil || got != 1234+567 {
		t.Errorf("parseStatTicks = %d, %v; want 1801", got, err)
	}
	if _, err := parseStatTicks("4242 (x) S 1"); err == nil {
		t.Error("parseStatTicks accepted a short line")
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tradkit-access-facade\nVmHWM:\t   81996 kB\nVmRSS:\t   80123 kB\n"
	if got := parseStatusKB(status, "VmRSS:"); got != 80123 {
		t.Errorf("VmRSS = %d, want 80123", got)
	}
	if got := parseStatusKB(status, "VmHWM:"); got != 81996 {
		t.Errorf("VmHWM = %d, want 81996", got)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.9: 90 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(d, q); got != want {
			t.Errorf("percentile(%v) = %v, want %v", q, got, want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
	if got := median([]float64{0.9, 0.5, 0.7}); got != 0.7 {
		t.Errorf("median = %v, want 0.7", got)
	}
	if got := median([]float64{1, 2, 3, 4}); got != 2.5 {
		t.Errorf("median = %v, want 2.5", got)
	}
}

func TestRatiosAt(t *testing.T) {
	cells := []Cell{
		{Mode: "A", InFlight: 64, Round: 1, Throughput: 1000}, {Mode: "B", InFlight: 64, Round: 1, Throughput: 800}, {Mode: "C", InFlight: 64, Round: 1, Throughput: 600},
		{Mode: "A", InFlight: 64, Round: 2, Throughput: 500}, {Mode: "B", InFlight: 64, Round: 2, Throughput: 300}, {Mode: "C", InFlight: 64, Round: 2, Throughput: 350},
		{Mode: "A", InFlight: 64, Round: 3, Throughput: 1000}, {Mode: "B", InFlight: 64, Round: 3, Throughput: 700}, {Mode: "C", InFlight: 64, Round: 3, Throughput: 500},
		{Mode: "A", InFlight: 1, Round: 1, Throughput: 10}, {Mode: "B", InFlight: 1, Round: 1, Throughput: 1},
	}
	r := ratiosAt(cells, 64)
	if r.BOverAMedian != 0.7 || r.COverAMedian != 0.6 || len(r.BOverA) != 3 {
		t.Errorf("ratios %+v, want medians B/A 0.7, C/A 0.6 over 3 rounds", r)
	}
}

func TestSelectModes(t *testing.T) {
	all := []mode{{key: "A"}, {key: "B"}, {key: "D"}, {key: "Mo"}}
	for _, tt := range []struct {
		keys []string
		want string
	}{
		{nil, "A B D Mo"},
		{[]string{"Mo", "D"}, "D Mo"}, // the grid's order, not the flag's
		{[]string{"X"}, ""},
	} {
		var got []string
		for _, m := range selectModes(all, tt.keys) {
			got = append(got, m.key)
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("selectModes(%q) = %q, want %q", tt.keys, g, tt.want)
		}
	}
}

func TestBannerField(t *testing.T) {
	line := "client: id=emulator-client secret=emulator-secret identity=automation@example.com admin_level=1 claims=a,b"
	if id, secret := bannerField(line, "id"), bannerField(line, "secret"); id != "emulator-client" || secret != "emulator-secret" {
		t.Errorf("bannerField: id %q secret %q", id, secret)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-inflight", "64, 1,64", "-facade-flags", "--log-level warn"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.inflight) != 2 || o.inflight[0] != 1 || o.inflight[1] != 64 {
		t.Errorf("inflight %v, want [1 64]", o.inflight)
	}
	if len(o.facadeFlags) != 2 || o.facadeFlags[1] != "warn" {
		t.Errorf("facade flags %q", o.facadeFlags)
	}
	o, err = parseFlags([]string{"-modes", " D, Mo,", "-facade-env", "GOGC=200 GODEBUG=x=1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.modes) != 2 || o.modes[0] != "D" || o.modes[1] != "Mo" {
		t.Errorf("modes %q, want [D Mo]", o.modes)
	}
	if len(o.facadeEnv) != 2 || o.facadeEnv[1] != "GODEBUG=x=1" {
		t.Errorf("facade env %q", o.facadeEnv)
	}
	for _, bad := range [][]string{{"-inflight", "0"}, {"-repeat", "0"}, {"-facade-bin", "x"}, {"extra"}, {"-facade-env", "GOGC"}, {"-facade-env", "=1"}, {"-modes", "D,Z"}} {
		if _, err := parseFlags(bad, nil); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestAlternate(t *testing.T) {
	var order []string
	call := func(name string, fail bool) callFunc {
		return func(context.Context, int) error {
			order = append(order, name)
			if fail {
				return errors.New("refused")
			}
			return nil
		}
	}
	la, lb, errs := alternate(context.Background(), 20*time.Millisecond, call("a", false), call("b", true))
	if len(order) < 4 || len(order)%2 != 0 {
		t.Fatalf("%d calls, want an even number of at least 4", len(order))
	}
	for i := 0; i < len(order); i += 2 {
		want := "ab"
		if (i/2)%2 == 1 {
			want = "ba"
		}
		if got := order[i] + order[i+1]; got != want {
			t.Fatalf("turn %d called %s, want %s (the order alternates)", i/2, got, want)
		}
	}
	if len(la) != len(order)/2 || len(lb) != 0 || errs != int64(len(order)/2) {
		t.Errorf("a's latencies %d, b's %d, errors %d; want %d, 0 (b fails), %d", len(la), len(lb), errs, len(order)/2, len(order)/2)
	}
}

// TestServiceDependencyVersions holds the reason the bench is a module of
// its own: the bench and the floor must be built from the dependency
// versions the facade ships with, or the floor comparison measures a
// version difference. Every module that provides packages to both builds
// must resolve alike.
func TestServiceDependencyVersions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	service, err := moduleDir(ctx, serviceModule)
	if err != nil {
		t.Fatal(err)
	}
	// modules maps each module that provides a package pkgs import to the
	// version built.
	modules := func(dir string, pkgs ...string) map[string]string {
		args := append([]string{"list", "-deps", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}"}, pkgs...)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps in %s: %v", dir, err)
		}
		versions := map[string]string{}
		for line := range strings.Lines(string(out)) {
			if path, version, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
				versions[path] = version
			}
		}
		return versions
	}
	bench := modules(".", "./...")
	facade := modules(service, "./cmd/radkit-access-facade", "./cmd/radkit-access-emulator")
	shared := 0
	for path, v := range bench {
		if fv, ok := facade[path]; ok {
			shared++
			if v != fv {
				t.Errorf("%s: the bench builds %s, the facade %s", path, v, fv)
			}
		}
	}
	// grpc, protobuf, genproto's rpc, prometheus's client_model and common.
	if shared < 5 {
		t.Errorf("%d modules in common with the facade's build, want at least 5", shared)
	}
}

func TestModuleDirRefusesAnotherModule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	service, err := moduleDir(ctx, serviceModule)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(service)
	if _, err := moduleDir(ctx, serviceModule); err == nil || !strings.Contains(err.Error(), "go -C tools/bench run .") {
		t.Errorf("moduleDir from the service's module: %v, want the message naming go -C tools/bench run .", err)
	}
}
