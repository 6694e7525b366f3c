package xsk

import (
	"strings"
	"testing"
)

func TestNewUmemValidatesConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     UmemConfig
		wantErr string
	}{
		{"frame size 0", UmemConfig{NumFrames: 64, FrameSize: 0}, "frame size"},
		{"frame size 1024", UmemConfig{NumFrames: 64, FrameSize: 1024}, "frame size"},
		{"frame size 3000", UmemConfig{NumFrames: 64, FrameSize: 3000}, "frame size"},
		{"frame size 8192", UmemConfig{NumFrames: 64, FrameSize: 8192}, "frame size"},
		{"frame size negative", UmemConfig{NumFrames: 64, FrameSize: -2048}, "frame size"},
		{"no frames", UmemConfig{NumFrames: 0, FrameSize: 2048}, "frames"},
		{"negative frames", UmemConfig{NumFrames: -64, FrameSize: 2048}, "frames"},
		{"63 frames", UmemConfig{NumFrames: 63, FrameSize: 2048}, "frames"},
		{"too many frames", UmemConfig{NumFrames: 1<<22 + 1, FrameSize: 4096}, "frames"},
		{"64 frames of 2048", UmemConfig{NumFrames: 64, FrameSize: 2048}, ""},
		{"100 frames of 4096", UmemConfig{NumFrames: 100, FrameSize: 4096}, ""},
		// Hugepages are a wish: with none reserved the UMEM falls back to
		// normal pages instead of failing.
		{"hugepages wished", UmemConfig{NumFrames: 1024, FrameSize: 2048, Hugepages: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := NewUmem(tc.cfg)
			if tc.wantErr != "" {
				if err == nil {
					u.Close()
					t.Fatalf("NewUmem(%+v) succeeded, want an error about %q", tc.cfg, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "new umem: ") {
					t.Fatalf("NewUmem(%+v) = %v, want \"new umem: ...%s...\"", tc.cfg, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewUmem(%+v): %v", tc.cfg, err)
			}
			defer func() {
				if err := u.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			if u.NumFrames() != tc.cfg.NumFrames || u.FrameSize() != tc.cfg.FrameSize || u.Free() != tc.cfg.NumFrames {
				t.Errorf("NumFrames %d FrameSize %d Free %d, want %d %d %d",
					u.NumFrames(), u.FrameSize(), u.Free(), tc.cfg.NumFrames, tc.cfg.FrameSize, tc.cfg.NumFrames)
			}
			if got, want := len(u.mem), tc.cfg.NumFrames*tc.cfg.FrameSize; got != want {
				t.Errorf("mapped %d bytes, want %d", got, want)
			}
			t.Logf("HugeBacked=%v", u.HugeBacked)
		})
	}
}

// TestUmemGetPutLIFO: frames come off the free stack lowest address first
// and a returned frame is the next one handed out, so that the hottest
// (most recently touched) frame is reused.
func TestUmemGetPutLIFO(t *testing.T) {
	const frames, size = 64, 2048
	u := newTestUmem(t, frames, size)
	for i := 0; i < 3; i++ {
		addr, ok := u.Get()
		if !ok || addr != uint64(i*size) {
			t.Fatalf("Get #%d = %#x, %v; want %#x, true", i, addr, ok, i*size)
		}
	}
	if u.Free() != frames-3 {
		t.Fatalf("Free = %d after 3 Gets, want %d", u.Free(), frames-3)
	}
	u.Put(1 * size)
	u.Put(0)
	for _, want := range []uint64{0, size, 3 * size} {
		if addr, ok := u.Get(); !ok || addr != want {
			t.Fatalf("Get = %#x, %v; want %#x (LIFO)", addr, ok, want)
		}
	}
}

func TestUmemGetExhausted(t *testing.T) {
	u := newTestUmem(t, 64, 4096)
	seen := map[uint64]bool{}
	for i := 0; i < 64; i++ {
		addr, ok := u.Get()
		if !ok {
			t.Fatalf("Get #%d failed with %d free", i, u.Free())
		}
		if addr%4096 != 0 || addr >= 64*4096 || seen[addr] {
			t.Fatalf("Get #%d = %#x: not a fresh chunk base inside the UMEM", i, addr)
		}
		seen[addr] = true
	}
	if addr, ok := u.Get(); ok {
		t.Fatalf("Get on an empty free stack = %#x, true; want false", addr)
	}
	if u.Free() != 0 {
		t.Fatalf("Free = %d, want 0", u.Free())
	}
	u.Put(5 * 4096)
	if addr, ok := u.Get(); !ok || addr != 5*4096 {
		t.Fatalf("Get after Put = %#x, %v", addr, ok)
	}
}

// TestUmemPutStoresChunkBase: RX descriptors point past the headroom into
// a chunk, and the frame goes back by that address.
func TestUmemPutStoresChunkBase(t *testing.T) {
	for _, size := range []int{2048, 4096} {
		u := newTestUmem(t, 64, size)
		for i := 0; i < 64; i++ {
			u.Get()
		}
		fs := uint64(size)
		for _, addr := range []uint64{7 * fs, 7*fs + 1, 7*fs + 256, 8*fs - 1, 63*fs + fs - 1} {
			u.Put(addr)
			got, _ := u.Get()
			if want := addr &^ (fs - 1); got != want {
				t.Errorf("frame size %d: Put(%#x) then Get = %#x, want chunk base %#x", size, addr, got, want)
			}
		}
	}
}

func TestUmemFrameEndsAtChunkEnd(t *testing.T) {
	const size = 2048
	u := newTestUmem(t, 64, size)
	for _, tc := range []struct {
		addr uint64
		n    uint32
	}{
		{0, 0},
		{0, 60},
		{0, size},
		{256, 1514},
		{3*size + 256, 64},
		{3*size + size - 1, 1},
		{63*size + 100, size - 100},
	} {
		f := u.Frame(tc.addr, tc.n)
		chunkEnd := (tc.addr/size + 1) * size
		if len(f) != int(tc.n) || cap(f) != int(chunkEnd-tc.addr) {
			t.Errorf("Frame(%#x, %d): len %d cap %d, want len %d cap %d (to the chunk end)",
				tc.addr, tc.n, len(f), cap(f), tc.n, chunkEnd-tc.addr)
		}
	}
	// The slice aliases the UMEM.
	f := u.Frame(5*size+10, 4)
	copy(f, "abcd")
	if got := string(u.mem[5*size+10 : 5*size+14]); got != "abcd" {
		t.Errorf("write through Frame not visible in the UMEM: %q", got)
	}
	// Growing a frame within its capacity must never reach the next chunk.
	f = f[:cap(f)]
	if end := 5*size + 10 + len(f); end != 6*size {
		t.Errorf("frame grown to capacity ends at %#x, want the chunk end %#x", end, 6*size)
	}
	if c := u.Chunk(5*size + 10); len(c) != size || cap(c) != size || &c[0] != &u.mem[5*size] {
		t.Errorf("Chunk(%#x): len %d cap %d, want the whole chunk at %#x", 5*size+10, len(c), cap(c), 5*size)
	}
}

func TestUmemContains(t *testing.T) {
	for _, size := range []uint64{2048, 4096} {
		const frames = 64
		u := newTestUmem(t, frames, int(size))
		total := uint64(frames) * size
		for _, tc := range []struct {
			name string
			addr uint64
			n    uint32
			want bool
		}{
			{"first byte", 0, 1, true},
			{"empty at start", 0, 0, true},
			{"whole first chunk", 0, uint32(size), true},
			{"one past first chunk", 0, uint32(size) + 1, false},
			{"headroom and full MTU", 256, 1514, true},
			{"up to chunk end", size + 256, uint32(size - 256), true},
			{"crosses chunk end by one", size + 256, uint32(size-256) + 1, false},
			{"last byte of a chunk", 2*size - 1, 1, true},
			{"last byte, two long", 2*size - 1, 2, false},
			{"last chunk whole", total - size, uint32(size), true},
			{"last byte of the UMEM", total - 1, 1, true},
			{"empty at last byte", total - 1, 0, true},
			{"at the UMEM end", total, 0, false},
			{"at the UMEM end, one byte", total, 1, false},
			{"far past the end", 1 << 40, 64, false},
			{"top bit set (unaligned-mode offset)", 1<<63 | 256, 64, false},
			{"max address", ^uint64(0), 1, false},
			{"max address, max length", ^uint64(0), ^uint32(0), false},
			{"max length", 0, ^uint32(0), false},
			{"max length from last byte", total - 1, ^uint32(0), false},
		} {
			if got := u.Contains(tc.addr, tc.n); got != tc.want {
				t.Errorf("frame size %d: %s: Contains(%#x, %d) = %v, want %v", size, tc.name, tc.addr, tc.n, got, tc.want)
			}
		}
	}
}

func TestUmemCloseRefusesWithSockets(t *testing.T) {
	u, err := NewUmem(UmemConfig{NumFrames: 64, FrameSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	u.socks = 1
	if err := u.Close(); err == nil {
		t.Fatal("Close with a socket bound succeeded")
	}
	if u.mem == nil {
		t.Fatal("a refused Close unmapped the UMEM")
	}
	u.socks = 0
	if err := u.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := u.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
