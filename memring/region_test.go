package memring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   Config
		field string // "" = valid
	}{
		{"defaults", Config{1, 1024, 2048}, ""},
		{"max", Config{16, 32768, 16384}, ""},
		{"min", Config{1, 64, 2048}, ""},
		{"qp 0", Config{0, 1024, 2048}, "queue_pairs"},
		{"qp 17", Config{17, 1024, 2048}, "queue_pairs"},
		{"qp negative", Config{-1, 1024, 2048}, "queue_pairs"},
		{"ring 32", Config{1, 32, 2048}, "ring_size"},
		{"ring 100", Config{1, 100, 2048}, "ring_size"},
		{"ring 65536", Config{1, 65536, 2048}, "ring_size"},
		{"ring negative", Config{1, -1024, 2048}, "ring_size"},
		{"frame 1024", Config{1, 1024, 1024}, "frame_size"},
		{"frame 3000", Config{1, 1024, 3000}, "frame_size"},
		{"frame 32768", Config{1, 1024, 32768}, "frame_size"},
		{"frame negative", Config{1, 1024, -2048}, "frame_size"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("Validate(%+v) = %v, want an error naming %s", c.cfg, err, c.field)
			}
		})
	}
	var c Config
	c.SetDefaults()
	if c != (Config{1, 1024, 2048}) {
		t.Fatalf("SetDefaults = %+v", c)
	}
	c = Config{QueuePairs: 4}
	c.SetDefaults()
	if c != (Config{4, 1024, 2048}) {
		t.Fatalf("SetDefaults kept nothing: %+v", c)
	}
}

func TestConfigRegionSize(t *testing.T) {
	// Defaults: stride 192+16*1024 = 16576; rings end at 4096+2*16576 =
	// 37248, buffers start on the next page, 40960; 2 rings * 1024 * 2048
	// bytes of buffers.
	if got, want := (Config{1, 1024, 2048}).RegionSize(), int64(40960+2*1024*2048); got != want {
		t.Fatalf("RegionSize = %d, want %d", got, want)
	}
	l := layoutOf(Config{16, 32768, 16384})
	if l.stride%64 != 0 || l.buffersOff%4096 != 0 || l.size != l.buffersOff+32*32768*16384 {
		t.Fatalf("max layout %+v", l)
	}
}

func mrOpenFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestNewRegion: both backings give a sealed, mapped region with a header
// that OpenRegion accepts, and frames cross between the two mappings.
func TestNewRegion(t *testing.T) {
	for _, huge := range []bool{true, false} {
		name := map[bool]string{true: "hugepages-if-available", false: "plain"}[huge]
		t.Run(name, func(t *testing.T) {
			fds := mrOpenFDs(t)
			tryHugepages = huge
			defer func() { tryHugepages = true }()
			cfg := Config{QueuePairs: 2, RingSize: 256, FrameSize: 4096}
			r, hugepages, err := NewRegion("memring-test", cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !huge && hugepages {
				t.Fatal("hugepages with hugepages disabled")
			}
			t.Logf("backing: hugepages=%v, region %d bytes (layout needs %d)", hugepages, r.Size(), cfg.RegionSize())
			if r.Config() != cfg {
				t.Fatalf("Config = %+v", r.Config())
			}
			var st unix.Stat_t
			if err := unix.Fstat(int(r.File().Fd()), &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != r.Size() || (hugepages && st.Size%hugePage != 0) || (!hugepages && st.Size != cfg.RegionSize()) {
				t.Fatalf("file size %d, region %d", st.Size, r.Size())
			}
			h := r.mem[:64]
			if string(h[:8]) != "VSMRING\x00" || binary.LittleEndian.Uint32(h[8:]) != 1 ||
				binary.LittleEndian.Uint64(h[16:]) != uint64(st.Size) || binary.LittleEndian.Uint64(h[40:]) != 4096 {
				t.Fatalf("header % x", h)
			}
			// The client cannot shrink (SIGBUS in the switch) or grow it.
			if err := unix.Ftruncate(int(r.File().Fd()), 4096); err == nil {
				t.Fatal("ftruncate shrank a sealed region")
			}
			if err := unix.Ftruncate(int(r.File().Fd()), st.Size+hugePage); err == nil {
				t.Fatal("ftruncate grew a sealed region")
			}

			// The client's view: a dup of the fd, as over SCM_RIGHTS.
			fd, err := unix.Dup(int(r.File().Fd()))
			if err != nil {
				t.Fatal(err)
			}
			cf := os.NewFile(uintptr(fd), "client")
			c, err := OpenRegion(cf)
			if err != nil {
				cf.Close()
				t.Fatal(err)
			}
			if c.Config() != cfg || c.Size() != r.Size() || c.Features() != FeatureEventfd {
				t.Fatalf("client sees %+v size %d features %#x", c.Config(), c.Size(), c.Features())
			}
			out := make([][]byte, 4)
			for q := 0; q < 2; q++ {
				ctx, crx := c.Queue(q, SideClient)
				stx, srx := r.Queue(q, SideSwitch)
				frame := mrFrame(make([]byte, 100), 100, uint64(q+7))
				if n, err := ctx.Send([][]byte{frame}); n != 1 || err != nil {
					t.Fatalf("client Send = %d, %v", n, err)
				}
				if n, err := srx.Recv(out); n != 1 || err != nil {
					t.Fatalf("switch Recv = %d, %v", n, err)
				}
				mrCheckFrame(t, out[0], 100, uint64(q+7))
				srx.Release()
				if n, _ := stx.Send([][]byte{frame}); n != 1 {
					t.Fatal("switch Send failed")
				}
				crx.SetNeedWakeup(true)
				if !stx.NeedWakeup() {
					t.Fatal("need_wakeup not shared")
				}
				if n, _ := crx.Recv(out); n != 1 {
					t.Fatal("client Recv failed")
				}
				mrCheckFrame(t, out[0], 100, uint64(q+7))
			}
			for _, reg := range []*Region{c, r} {
				if err := reg.Close(); err != nil {
					t.Fatal(err)
				}
				if err := reg.Close(); err != nil {
					t.Fatalf("second Close: %v", err)
				}
				if tx, rx := reg.Queue(0, SideSwitch); tx != nil || rx != nil {
					t.Fatal("Queue on a closed region")
				}
			}
			if got := mrOpenFDs(t); got != fds {
				t.Fatalf("fd leak: %d open, %d before", got, fds)
			}
		})
	}
}

func TestNewRegionBadConfig(t *testing.T) {
	if _, _, err := NewRegion("x", Config{RingSize: 100}); err == nil || !strings.Contains(err.Error(), "ring_size") {
		t.Fatalf("NewRegion with ring_size 100: %v", err)
	}
}

// mrHeaderFile writes a header (and size bytes of file) into a plain memfd.
func mrHeaderFile(t *testing.T, h []byte, size int64) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("memring-header", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "header")
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(h, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestOpenRegionBadHeader: every header field out of range is refused with
// ErrBadHeader and an error naming the field.
func TestOpenRegionBadHeader(t *testing.T) {
	good := layoutOf(Config{QueuePairs: 1, RingSize: 64, FrameSize: 2048})
	le := binary.LittleEndian
	u32 := func(off int, v uint32) func([]byte) { return func(h []byte) { le.PutUint32(h[off:], v) } }
	u64 := func(off int, v uint64) func([]byte) { return func(h []byte) { le.PutUint64(h[off:], v) } }
	cases := []struct {
		name  string
		edit  func([]byte)
		size  int64 // file size; 0 = good.size
		field string
	}{
		{"magic", func(h []byte) { h[0] = 'X' }, 0, "magic"},
		{"magic nul", func(h []byte) { h[7] = '!' }, 0, "magic"},
		{"version 0", u32(8, 0), 0, "version"},
		{"version 2", u32(8, 2), 0, "version"},
		{"region_size not file size", u64(16, good.size+4096), 0, "region_size"},
		{"region_size small", u64(16, good.size-4096), int64(good.size - 4096), "region_size"},
		{"region_size huge", u64(16, 1<<63), 0, "region_size"},
		{"queue_pairs 0", u32(24, 0), 0, "queue_pairs"},
		{"queue_pairs 17", u32(24, 17), 0, "queue_pairs"},
		{"queue_pairs 2 in a 1-pair file", u32(24, 2), 0, "buffers_offset"},
		{"ring_size 0", u32(28, 0), 0, "ring_size"},
		{"ring_size 32", u32(28, 32), 0, "ring_size"},
		{"ring_size 96", u32(28, 96), 0, "ring_size"},
		{"ring_size 65536", u32(28, 65536), 0, "ring_size"},
		{"ring_size 128 in a 64 file", u32(28, 128), 0, "ring_stride"},
		{"frame_size 1024", u32(32, 1024), 0, "frame_size"},
		{"frame_size 3072", u32(32, 3072), 0, "frame_size"},
		{"frame_size 32768", u32(32, 32768), 0, "frame_size"},
		{"frame_size max", u32(32, 1<<31), 0, "frame_size"},
		{"reserved", u32(36, 1), 0, "reserved"},
		{"rings_offset 0", u64(40, 0), 0, "rings_offset"},
		{"rings_offset 8192", u64(40, 8192), 0, "rings_offset"},
		{"ring_stride small", u64(56, good.stride-64), 0, "ring_stride"},
		{"ring_stride 0", u64(56, 0), 0, "ring_stride"},
		{"ring_stride unaligned", u64(56, good.stride+8), 0, "ring_stride"},
		{"ring_stride overflow", u64(56, 1<<62), 0, "ring_stride"},
		{"buffers_offset in the rings", u64(48, ringsOffset+good.stride), 0, "buffers_offset"},
		{"buffers_offset unaligned", u64(48, good.buffersOff+1), 0, "buffers_offset"},
		{"buffers_offset overflow", u64(48, 1<<63), 0, "buffers_offset"},
		{"buffers_offset past the end", u64(48, good.size), 0, "region_size"},
		{"file smaller than the header", nil, 100, "region_size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := make([]byte, 64)
			good.encode(h)
			if c.edit != nil {
				c.edit(h)
			}
			size := c.size
			if size == 0 {
				size = int64(good.size)
			}
			if size < 64 {
				h = h[:size]
			}
			f := mrHeaderFile(t, h, size)
			r, err := OpenRegion(f)
			if err == nil {
				r.Close()
				t.Fatal("OpenRegion accepted the header")
			}
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error %v is not ErrBadHeader", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %q does not name %s", err, c.field)
			}
		})
	}
	t.Run("good", func(t *testing.T) {
		h := make([]byte, 64)
		good.encode(h)
		r, err := OpenRegion(mrHeaderFile(t, h, int64(good.size)))
		if err != nil {
			t.Fatal(err)
		}
		// OpenRegion took the file; Close closes it, and the Cleanup's
		// second close is harmless.
		r.Close()
	})
	t.Run("header copied", func(t *testing.T) {
		h := make([]byte, 64)
		good.encode(h)
		f := mrHeaderFile(t, h, int64(good.size))
		r, err := OpenRegion(f)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		// Rewriting the shared header afterwards changes nothing.
		le.PutUint32(r.mem[28:], 32768)
		le.PutUint32(r.mem[32:], 16384)
		if r.Config() != (Config{1, 64, 2048}) {
			t.Fatalf("Config follows the shared header: %+v", r.Config())
		}
	})
}

// TestNewRegionHugepageFallback: a region bigger than the free hugepage
// pool cannot reserve its pages, so NewRegion falls back to a plain memfd
// (a real failed attempt, not the test hook). Reads the pool size from
// /proc/meminfo and changes no system setting.
func TestNewRegionHugepageFallback(t *testing.T) {
	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Skip("no /proc/meminfo")
	}
	free := int64(-1)
	for _, line := range strings.Split(string(meminfo), "\n") {
		var n int64
		if _, err := fmt.Sscanf(line, "HugePages_Free: %d", &n); err == nil {
			free = n
		}
	}
	if free < 0 {
		t.Skip("no HugePages_Free in /proc/meminfo")
	}
	// Smallest geometry whose buffers alone exceed the free pool.
	cfg := Config{QueuePairs: 1, RingSize: 1024, FrameSize: 2048}
	for cfg.RegionSize() <= free*hugePage {
		switch {
		case cfg.RingSize < 32768:
			cfg.RingSize *= 2
		case cfg.FrameSize < 16384:
			cfg.FrameSize *= 2
		case cfg.QueuePairs < 16:
			cfg.QueuePairs *= 2
		default:
			t.Skipf("%d free hugepages: no region is big enough to exhaust them", free)
		}
	}
	if cfg.RegionSize() > 512<<20 {
		t.Skipf("%d free hugepages: a %d MiB region is too big for a unit test", free, cfg.RegionSize()>>20)
	}
	r, hugepages, err := NewRegion("memring-fallback", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	t.Logf("%d free 2 MiB hugepages, region of %d MiB: hugepages=%v", free, cfg.RegionSize()>>20, hugepages)
	if hugepages {
		// Another process freed pages meanwhile, or the pool grew.
		t.Log("hugepage reservation succeeded; fallback not exercised")
		return
	}
	if r.Size() != cfg.RegionSize() {
		t.Fatalf("plain region of %d bytes, want %d", r.Size(), cfg.RegionSize())
	}
	tx, rx := r.Queue(0, SideClient)
	_, srx := r.Queue(0, SideSwitch)
	if n, _ := tx.Send([][]byte{make([]byte, 64)}); n != 1 {
		t.Fatal("Send on the fallback region failed")
	}
	out := make([][]byte, 1)
	if n, _ := srx.Recv(out); n != 1 {
		t.Fatal("Recv on the fallback region failed")
	}
	_ = rx
}
