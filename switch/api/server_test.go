package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
	"github.com/vswitch/vswitch/switch/api/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

// socketDir returns a short temp dir: sun_path holds only 107 bytes and
// t.TempDir's names grow with the test name.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vsapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// start serves ctl on a fresh socket and returns a client for it; both are
// closed when the test ends.
func start(t *testing.T, ctl vswitch.Control) (*api.Client, string) {
	t.Helper()
	return startLog(t, ctl, zaptest.NewLogger(t))
}

func startLog(t *testing.T, ctl vswitch.Control, log *zap.Logger) (*api.Client, string) {
	t.Helper()
	path := filepath.Join(socketDir(t), "api.sock")
	srv := api.NewServer(ctl, log)
	if err := srv.Serve(path, 0o600); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	cl := api.NewClient(path)
	t.Cleanup(cl.Close)
	return cl, path
}

// rawClient speaks HTTP to the socket directly, for requests the typed
// client never sends.
func rawClient(t *testing.T, path string) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func wantAPIError(t *testing.T, err error, code int, sentinel error, msgPart string) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *api.Error", err, err)
	}
	if ae.StatusCode != code {
		t.Errorf("status %d, want %d (%v)", ae.StatusCode, code, err)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("error %v does not wrap %v", err, sentinel)
	}
	if !strings.Contains(err.Error(), msgPart) {
		t.Errorf("error %q does not contain %q", err, msgPart)
	}
}

func TestEndpoints(t *testing.T) {
	ctl := apitest.NewSample()
	cl, _ := start(t, ctl)
	ctx := context.Background()

	t.Run("status", func(t *testing.T) {
		st, err := cl.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := ctl.Status()
		if st.PID != want.PID || st.Ports != 2 || st.FDBEntries != 3 || st.Workers != 2 || !st.Started.Equal(want.Started) {
			t.Errorf("status %+v, want %+v", st, want)
		}
	})
	t.Run("version", func(t *testing.T) {
		v, err := cl.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v.Version != vswitch.Version || v.API != "v1" || !strings.HasPrefix(v.GoVersion, "go") {
			t.Errorf("version %+v", v)
		}
	})
	t.Run("ports", func(t *testing.T) {
		ports, err := cl.Ports(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ports) != 2 || ports[0].Name != "eth0" || ports[1].VLAN == nil || ports[1].VLAN.Native != 1 {
			t.Errorf("ports %+v", ports)
		}
	})
	t.Run("add port fills defaults", func(t *testing.T) {
		info, err := cl.AddPort(ctx, vswitch.PortSpec{Interface: "eth2"})
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != "eth2" || info.XDPMode != "native" || info.Bind != "auto" || info.Type != "afxdp" || info.State != "up" {
			t.Errorf("info %+v", info)
		}
	})
	t.Run("add port duplicate", func(t *testing.T) {
		_, err := cl.AddPort(ctx, vswitch.PortSpec{Name: "eth0", Interface: "eth9"})
		wantAPIError(t, err, http.StatusConflict, vswitch.ErrExists, `add port "eth0": already exists`)
	})
	t.Run("add port invalid", func(t *testing.T) {
		_, err := cl.AddPort(ctx, vswitch.PortSpec{Name: "v", Interface: "eth5", VLAN: &vswitch.VLANSpec{Mode: "access"}})
		wantAPIError(t, err, http.StatusBadRequest, nil, "vlan.tag: 0 is not in 1..4094")
		var fe *vswitch.FieldError
		if !errors.As(err, &fe) || fe.Field != "vlan.tag" {
			t.Errorf("error %v does not unwrap to a FieldError for vlan.tag", err)
		}
	})
	t.Run("del port", func(t *testing.T) {
		if err := cl.DelPort(ctx, "eth2"); err != nil {
			t.Fatal(err)
		}
		if ports, _ := cl.Ports(ctx); len(ports) != 2 {
			t.Errorf("%d ports after delete, want 2", len(ports))
		}
	})
	t.Run("del port missing", func(t *testing.T) {
		err := cl.DelPort(ctx, "nope")
		wantAPIError(t, err, http.StatusNotFound, vswitch.ErrNotFound, `delete port "nope": not found`)
	})
	t.Run("del port escapes name", func(t *testing.T) {
		err := cl.DelPort(ctx, "a/b c")
		wantAPIError(t, err, http.StatusNotFound, vswitch.ErrNotFound, `delete port "a/b c": not found`)
	})
	t.Run("fdb", func(t *testing.T) {
		vlan20 := uint16(20)
		for _, tc := range []struct {
			name   string
			filter api.FDBFilter
			want   int
		}{
			{"all", api.FDBFilter{}, 3},
			{"port", api.FDBFilter{Port: "eth1"}, 2},
			{"vlan", api.FDBFilter{VLAN: &vlan20}, 1},
			{"port and vlan", api.FDBFilter{Port: "eth0", VLAN: &vlan20}, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				entries, err := cl.FDB(ctx, tc.filter)
				if err != nil {
					t.Fatal(err)
				}
				if len(entries) != tc.want {
					t.Errorf("%d entries, want %d: %+v", len(entries), tc.want, entries)
				}
				if entries == nil {
					t.Error("entries is nil; the server must send [] not null")
				}
			})
		}
	})
	t.Run("stats", func(t *testing.T) {
		st, err := cl.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := ctl.Stats()
		if len(st.Ports) != 2 || st.Ports[0].DropsBy["no_fdb"] != 5 || st.Ports[0].XSKTxInvalid != 4 ||
			len(st.Workers) != 2 || st.Workers[0].BusyPct != 12.5 || !st.Time.Equal(want.Time) {
			t.Errorf("stats %+v, want %+v", st, want)
		}
	})
	t.Run("flush fdb", func(t *testing.T) {
		n, err := cl.FlushFDB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("flushed %d, want 2 (the static entry stays)", n)
		}
		if entries, _ := cl.FDB(ctx, api.FDBFilter{}); len(entries) != 1 {
			t.Errorf("%d entries after flush, want 1", len(entries))
		}
	})
}

func TestEmptySwitchSendsEmptyLists(t *testing.T) {
	_, path := start(t, apitest.New())
	hc := rawClient(t, path)
	for _, p := range []string{"/v1/ports", "/v1/fdb"} {
		resp, err := hc.Get("http://x" + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.TrimSpace(string(body)); got != "[]" {
			t.Errorf("GET %s = %q, want []", p, got)
		}
	}
}

func TestRequestErrors(t *testing.T) {
	_, path := start(t, apitest.NewSample())
	hc := rawClient(t, path)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		msg, field               string
	}{
		{"unknown field", "POST", "/v1/ports", `{"interface":"eth7","vlan_mode":"access"}`, 400, `unknown field "vlan_mode"`, ""},
		{"unknown nested field", "POST", "/v1/ports", `{"interface":"eth7","vlan":{"mode":"access","tag":5,"pvid":1}}`, 400, `unknown field "pvid"`, ""},
		{"bad json", "POST", "/v1/ports", `{"interface":`, 400, "decode request body", ""},
		{"wrong type", "POST", "/v1/ports", `{"interface":"eth7","queues":"four"}`, 400, "decode request body", ""},
		{"empty body", "POST", "/v1/ports", ``, 400, "empty body", ""},
		{"trailing data", "POST", "/v1/ports", `{"interface":"eth7"} {}`, 400, "trailing data", ""},
		{"too large", "POST", "/v1/ports", `{"interface":"` + strings.Repeat("x", 100<<10) + `"}`, 413, "larger than", ""},
		{"invalid spec", "POST", "/v1/ports", `{"interface":"eth7","xdp_mode":"turbo"}`, 400, `xdp_mode: "turbo" is not one of native, skb`, "xdp_mode"},
		{"bad vlan query", "GET", "/v1/fdb?vlan=abc", ``, 400, "vlan", "vlan"},
		{"unknown path", "GET", "/v1/nope", ``, 404, "Not Found", ""},
		{"wrong method", "PUT", "/v1/status", ``, 405, "Method Not Allowed", ""},
		{"delete without name", "DELETE", "/v1/ports/", ``, 404, "Not Found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://x"+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var body api.ErrorResponse
			dec := json.NewDecoder(resp.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("error body is not an ErrorResponse: %v", err)
			}
			if !strings.Contains(body.Error, tc.msg) {
				t.Errorf("error %q does not contain %q", body.Error, tc.msg)
			}
			if body.Field != tc.field {
				t.Errorf("field %q, want %q", body.Field, tc.field)
			}
			if tc.code == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
		})
	}
}

// errControl answers AddPort with a fixed error or panic.
type errControl struct {
	*apitest.Control
	err   error
	panic bool
}

func (c *errControl) AddPort(vswitch.PortSpec) (vswitch.PortInfo, error) {
	if c.panic {
		panic("boom")
	}
	return vswitch.PortInfo{}, c.err
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ctl   *errControl
		code  int
		is    error
		msg   string
		field string
	}{
		{"field error", &errControl{err: fmt.Errorf("add port: %w", &vswitch.FieldError{Field: "queues", Msg: "link has 2"})}, 400, nil, "add port: queues: link has 2", "queues"},
		{"wrapped not found", &errControl{err: fmt.Errorf("find link eth7: %w", vswitch.ErrNotFound)}, 404, vswitch.ErrNotFound, "find link eth7: not found", ""},
		{"bare exists gets a subject", &errControl{err: vswitch.ErrExists}, 409, vswitch.ErrExists, `add port "eth7": already exists`, ""},
		{"other", &errControl{err: errors.New("attach xdp: device busy")}, 500, nil, "attach xdp: device busy", ""},
		{"panic", &errControl{panic: true}, 500, nil, "internal error: boom", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.ctl.Control = apitest.New()
			cl, _ := start(t, tc.ctl)
			_, err := cl.AddPort(context.Background(), vswitch.PortSpec{Interface: "eth7"})
			wantAPIError(t, err, tc.code, tc.is, tc.msg)
			var ae *api.Error
			if errors.As(err, &ae) && ae.Field != tc.field {
				t.Errorf("field %q, want %q", ae.Field, tc.field)
			}
		})
	}
}

func TestSocketMode(t *testing.T) {
	for _, mode := range []os.FileMode{0o600, 0o660} {
		t.Run(fmt.Sprintf("%#o", uint32(mode)), func(t *testing.T) {
			dir := socketDir(t)
			path := filepath.Join(dir, "api.sock")
			srv := api.NewServer(apitest.New(), zaptest.NewLogger(t))
			if err := srv.Serve(path, mode); err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket {
				t.Errorf("%s is %v, not a socket", path, fi.Mode())
			}
			if fi.Mode().Perm() != mode {
				t.Errorf("mode %#o, want %#o", uint32(fi.Mode().Perm()), uint32(mode))
			}
			// The private bind directory must not be left behind.
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("dir holds %d entries, want only the socket: %v", len(ents), ents)
			}
		})
	}
	t.Run("not a permission mode", func(t *testing.T) {
		srv := api.NewServer(apitest.New(), zaptest.NewLogger(t))
		defer srv.Close()
		if err := srv.Serve(filepath.Join(socketDir(t), "api.sock"), os.ModeSetuid|0o600); err == nil {
			t.Error("Serve accepted a setuid mode")
		}
	})
}

func TestServeCreatesParentDir(t *testing.T) {
	path := filepath.Join(socketDir(t), "run", "vswitch", "api.sock")
	cl, _ := func() (*api.Client, string) {
		srv := api.NewServer(apitest.New(), zaptest.NewLogger(t))
		if err := srv.Serve(path, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		cl := api.NewClient(path)
		t.Cleanup(cl.Close)
		return cl, path
	}()
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil || !fi.IsDir() {
		t.Fatalf("parent dir: %v %v", fi, err)
	}
	if _, err := cl.Status(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	path := filepath.Join(socketDir(t), "api.sock")
	// A daemon that died leaves its socket file behind with nobody listening.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	srv := api.NewServer(apitest.New(), zaptest.NewLogger(t))
	if err := srv.Serve(path, 0o600); err != nil {
		t.Fatalf("Serve over a stale socket: %v", err)
	}
	defer srv.Close()
	cl := api.NewClient(path)
	defer cl.Close()
	if _, err := cl.Status(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestLiveSocketIsKept(t *testing.T) {
	path := filepath.Join(socketDir(t), "api.sock")
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	before, _ := os.Lstat(path)

	srv := api.NewServer(apitest.New(), zaptest.NewLogger(t))
	defer srv.Close()
	err = srv.Serve(path, 0o600)
	if !errors.Is(err, api.ErrDaemonRunning) {
		t.Fatalf("Serve = %v, want ErrDaemonRunning", err)
	}
	if !strings.Contains(err.Error(), "another vswitchd is running") {
		t.Errorf("error %q does not say another daemon runs", err)
	}
	after, err := os.Lstat(path)
	if err != nil || !os.SameFile(before, after) {
		t.Errorf("the live socket was replaced or removed: %v", err)
	}
}

func TestNonSocketIsKept(t *testing.T) {
	path := filepath.Join(socketDir(t), "api.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(apitest.New(), zaptest.NewLogger(t))
	defer srv.Close()
	if err := srv.Serve(path, 0o600); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Serve = %v, want a not-a-socket error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("file changed to %q", b)
	}
}

func TestServeLifecycle(t *testing.T) {
	path := filepath.Join(socketDir(t), "api.sock")
	srv := api.NewServer(apitest.New(), zaptest.NewLogger(t))
	if err := srv.Serve(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(path, 0o600); err == nil {
		t.Error("second Serve succeeded")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := srv.Serve(path, 0o600); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Close = %v, want ErrServerClosed", err)
	}
	// A new server may take the path over once the old one is gone.
	srv2 := api.NewServer(apitest.New(), zaptest.NewLogger(t))
	if err := srv2.Serve(path, 0o600); err != nil {
		t.Fatal(err)
	}
	srv2.Close()
}

func TestClientUnreachable(t *testing.T) {
	path := filepath.Join(socketDir(t), "nobody.sock")
	cl := api.NewClient(path)
	defer cl.Close()
	_, err := cl.Status(context.Background())
	if !errors.Is(err, api.ErrUnreachable) {
		t.Fatalf("error %v does not wrap ErrUnreachable", err)
	}
	want := "cannot reach vswitchd at " + path + ": is it running?"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestClientNonJSONError(t *testing.T) {
	// A proxy or an older daemon may answer in plain text; the client keeps
	// its words.
	path := filepath.Join(socketDir(t), "plain.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream broke", http.StatusBadGateway)
	})}
	go hs.Serve(ln)
	defer hs.Close()
	cl := api.NewClient(path)
	defer cl.Close()
	_, err = cl.Stats(context.Background())
	wantAPIError(t, err, http.StatusBadGateway, nil, "upstream broke")
}

func TestConcurrentRequests(t *testing.T) {
	ctl := apitest.NewSample()
	cl, _ := startLog(t, ctl, zap.NewNop())
	ctx := context.Background()
	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				name := fmt.Sprintf("p%d-%d", w, i)
				iface := fmt.Sprintf("v%d.%d", w, i)
				if _, err := cl.AddPort(ctx, vswitch.PortSpec{Name: name, Interface: iface}); err != nil {
					errs <- err
					continue
				}
				if _, err := cl.Ports(ctx); err != nil {
					errs <- err
				}
				if _, err := cl.Stats(ctx); err != nil {
					errs <- err
				}
				if _, err := cl.FDB(ctx, api.FDBFilter{Port: "eth1"}); err != nil {
					errs <- err
				}
				ip := fmt.Sprintf("10.%d.%d.1", w, i)
				if _, err := cl.AddBinding(ctx, vswitch.BindingSpec{IP: ip, MAC: "02:00:00:00:00:99"}); err != nil {
					errs <- err
				}
				if _, err := cl.Bindings(ctx, api.BindingFilter{Family: api.FamilyIPv4}); err != nil {
					errs <- err
				}
				if err := cl.DelBinding(ctx, 0, ip); err != nil {
					errs <- err
				}
				if err := cl.DelPort(ctx, name); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st, err := cl.Status(ctx); err != nil || st.Ports != 2 {
		t.Errorf("status after the storm: %+v %v", st, err)
	}
}

func TestCloseWaitsForRequests(t *testing.T) {
	ctl := &slowControl{Control: apitest.New(), entered: make(chan struct{}), release: make(chan struct{})}
	path := filepath.Join(socketDir(t), "api.sock")
	srv := api.NewServer(ctl, zaptest.NewLogger(t))
	if err := srv.Serve(path, 0o600); err != nil {
		t.Fatal(err)
	}
	cl := api.NewClient(path)
	defer cl.Close()
	done := make(chan error, 1)
	go func() {
		_, err := cl.Stats(context.Background())
		done <- err
	}()
	<-ctl.entered
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	time.Sleep(50 * time.Millisecond)
	close(ctl.release)
	if err := <-done; err != nil {
		t.Errorf("request in flight during Close failed: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

// slowControl holds Stats until released.
type slowControl struct {
	*apitest.Control
	entered, release chan struct{}
}

func (c *slowControl) Stats() vswitch.Stats {
	close(c.entered)
	<-c.release
	return c.Control.Stats()
}

func TestClientSendsValidJSON(t *testing.T) {
	// The client must send exactly the PortSpec JSON, which the server
	// decodes strictly; a round trip with every field set proves they agree.
	cl, _ := start(t, apitest.New())
	spec := vswitch.PortSpec{Name: "t1", Interface: "eth3", Type: "afxdp", XDPMode: "skb", Bind: "copy", Queues: 3, RingSize: 1024,
		VLAN: &vswitch.VLANSpec{Mode: "trunk", Allowed: []uint16{5, 6}, Native: 7}}
	info, err := cl.AddPort(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	// The live values travel under their own names, next to the spec.
	if info.XDPMode != "skb" || len(info.Queues) != 3 {
		t.Errorf("live xdp_mode %q, queues %v; want skb and 3 queues", info.XDPMode, info.Queues)
	}
	a, _ := json.Marshal(spec)
	b, _ := json.Marshal(info.PortSpec)
	if !bytes.Equal(a, b) {
		t.Errorf("spec came back as %s, sent %s", b, a)
	}
}
