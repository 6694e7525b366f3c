package pipeline

import (
	"encoding/binary"
	"math/rand"
	"testing"
)

// naiveSum is RFC 1071 written the obvious way, two bytes at a time: the
// reference the fast Checksum is held against.
func naiveSum(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func TestChecksumMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	buf := make([]byte, 4096)
	cases := []struct {
		name string
		fill func(b []byte)
	}{
		{"random", func(b []byte) { rng.Read(b) }},
		{"all_ff", func(b []byte) {
			for i := range b {
				b[i] = 0xff
			}
		}},
		{"all_zero", func(b []byte) { clear(b) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fill(buf)
			for n := 0; n <= 300; n++ {
				for _, start := range []int{0, 1, 3, 7} { // unaligned starts too
					b := buf[start : start+n]
					init := uint16(rng.Intn(0x10000))
					if got, want := Checksum(b, init), naiveSum(b, init); got != want {
						t.Fatalf("len %d start %d init %#x: Checksum %#x, naive %#x", n, start, init, got, want)
					}
				}
			}
			for _, n := range []int{1499, 1500, 4000} {
				if got, want := Checksum(buf[:n], 0), naiveSum(buf[:n], 0); got != want {
					t.Fatalf("len %d: Checksum %#x, naive %#x", n, got, want)
				}
			}
		})
	}
}

// TestChecksumComposes checks that sums of consecutive even-length pieces
// combine into the sum of the whole, which the pseudo-header code relies on.
func TestChecksumComposes(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	b := make([]byte, 200)
	rng.Read(b)
	for cut := 0; cut <= len(b); cut += 2 {
		whole := Checksum(b, 0)
		if got := Checksum(b[cut:], Checksum(b[:cut], 0)); got != whole {
			t.Fatalf("cut %d: chained %#x, whole %#x", cut, got, whole)
		}
		if got := ChecksumCombine(Checksum(b[:cut], 0), Checksum(b[cut:], 0)); got != whole && got^whole != 0xffff {
			t.Fatalf("cut %d: combined %#x, whole %#x", cut, got, whole)
		}
	}
}

func TestPseudoHeaderSums(t *testing.T) {
	t.Run("ipv4", func(t *testing.T) {
		src, dst := [4]byte{192, 0, 2, 1}, [4]byte{198, 51, 100, 7}
		ph := []byte{192, 0, 2, 1, 198, 51, 100, 7, 0, 17, 0x05, 0xdc}
		if got, want := PseudoHeaderSumIPv4(src, dst, 17, 1500), naiveSum(ph, 0); got != want {
			t.Errorf("got %#x want %#x", got, want)
		}
	})
	t.Run("ipv6", func(t *testing.T) {
		rng := rand.New(rand.NewSource(4))
		var src, dst [16]byte
		rng.Read(src[:])
		rng.Read(dst[:])
		ph := make([]byte, 40)
		copy(ph, src[:])
		copy(ph[16:], dst[:])
		binary.BigEndian.PutUint32(ph[32:], 70000)
		ph[39] = 58
		if got, want := PseudoHeaderSumIPv6(src, dst, 58, 70000), naiveSum(ph, 0); got != want {
			t.Errorf("got %#x want %#x", got, want)
		}
	})
}

// TestChecksumsAgreeWithGopacket checks the IPv4 header and L4 checksum
// helpers against the checksums gopacket wrote into the golden frames.
func TestChecksumsAgreeWithGopacket(t *testing.T) {
	for _, g := range goldens(t) {
		t.Run(g.name, func(t *testing.T) {
			p := parse(g.frame)
			if ip := p.IPv4(); ip != nil {
				if got := ip.CalculateChecksum(); got != ip.Checksum() {
					t.Errorf("IPv4 CalculateChecksum %#x, gopacket wrote %#x", got, ip.Checksum())
				}
				if !ip.IsChecksumValid() {
					t.Error("IPv4 header checksum reported invalid")
				}
			}
			csum, ok := p.ComputeL4Checksum()
			wantOK := p.Flags&FlagL4 != 0 && p.Flags&FlagFragment == 0
			if ok != wantOK {
				t.Fatalf("ComputeL4Checksum ok = %v, want %v", ok, wantOK)
			}
			if !ok {
				if p.L4ChecksumValid() {
					t.Error("L4ChecksumValid true without a checksummable L4 header")
				}
				return
			}
			var stored uint16
			switch p.L4Proto {
			case ProtoTCP:
				stored = p.TCP().Checksum()
			case ProtoUDP:
				stored = p.UDP().Checksum()
			default:
				stored = p.ICMP().Checksum()
			}
			if csum != stored {
				t.Errorf("ComputeL4Checksum %#x, gopacket wrote %#x", csum, stored)
			}
			if !p.L4ChecksumValid() {
				t.Error("L4ChecksumValid = false on a gopacket frame")
			}
			// Corrupt one payload bit: the checksum must notice.
			p.Data[int(p.L3Off)+int(p.L3Len)-1] ^= 0x10
			if p.L4ChecksumValid() {
				t.Error("L4ChecksumValid = true after a bit flip")
			}
			p.Data[int(p.L3Off)+int(p.L3Len)-1] ^= 0x10
			// SetL4Checksum writes back what gopacket wrote.
			binaryZero(p.Data[int(p.L4Off):], p.L4Proto)
			if !p.SetL4Checksum() || !p.L4ChecksumValid() {
				t.Error("SetL4Checksum did not produce a valid checksum")
			}
		})
	}
}

// binaryZero clears the checksum field of an L4 header.
func binaryZero(l4 []byte, proto uint8) {
	off := map[uint8]int{ProtoTCP: 16, ProtoUDP: 6, ProtoICMP: 2, ProtoICMPv6: 2}[proto]
	binary.BigEndian.PutUint16(l4[off:], 0)
}

func TestUDPZeroChecksum(t *testing.T) {
	p := parse(frameOf(t, "ipv4_udp"))
	p.UDP().SetChecksum(0)
	if !p.L4ChecksumValid() {
		t.Error("IPv4 UDP checksum 0 (none) must count as valid")
	}
	p.UDP().SetDstPort(5353)
	p.SetIPv4Src([4]byte{203, 0, 113, 9})
	if c := p.UDP().Checksum(); c != 0 {
		t.Errorf("rewrite turned 'no checksum' into %#x", c)
	}
	q := parse(frameOf(t, "ipv6_udp"))
	q.UDP().SetChecksum(0)
	if q.L4ChecksumValid() {
		t.Error("IPv6 UDP checksum 0 must be invalid")
	}
}

// TestIncrementalUpdateProperty checks on random data that the RFC 1624
// updates give exactly what a full recomputation gives.
func TestIncrementalUpdateProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	full := func(b []byte) uint16 { return ^Checksum(b, 0) }
	t.Run("update16", func(t *testing.T) {
		for i := 0; i < 100000; i++ {
			b := make([]byte, 4+2*rng.Intn(40))
			rng.Read(b)
			// An all-zero buffer is the one case where incremental and
			// full differ (0x0000 vs 0xFFFF); headers are never all zero.
			b[len(b)-1] |= 1
			c := full(b)
			off := 2 * rng.Intn(len(b)/2-1)
			old := binary.BigEndian.Uint16(b[off:])
			nw := uint16(rng.Intn(0x10000))
			if i%10 == 0 {
				nw = [...]uint16{0, 0xffff, old, ^old}[i/10%4]
			}
			binary.BigEndian.PutUint16(b[off:], nw)
			if got, want := ChecksumUpdate16(c, old, nw), full(b); got != want {
				t.Fatalf("case %d: incremental %#x, full %#x", i, got, want)
			}
		}
	})
	t.Run("update32", func(t *testing.T) {
		for i := 0; i < 100000; i++ {
			b := make([]byte, 4+2*rng.Intn(40))
			rng.Read(b)
			b[len(b)-1] |= 1
			c := full(b)
			off := 2 * rng.Intn((len(b)-2)/2)
			old := binary.BigEndian.Uint32(b[off:])
			nw := rng.Uint32()
			binary.BigEndian.PutUint32(b[off:], nw)
			if got, want := ChecksumUpdate32(c, old, nw), full(b); got != want {
				t.Fatalf("case %d: incremental %#x, full %#x", i, got, want)
			}
		}
	})
	t.Run("update_bytes", func(t *testing.T) {
		for i := 0; i < 50000; i++ {
			n := []int{4, 16}[i%2]
			b := make([]byte, n+2*rng.Intn(40))
			rng.Read(b)
			b[len(b)-1] |= 1
			c := full(b)
			off := 2 * rng.Intn((len(b)-n)/2+1)
			old := append([]byte(nil), b[off:off+n]...)
			nw := make([]byte, n)
			rng.Read(nw)
			copy(b[off:], nw)
			if got, want := ChecksumUpdateBytes(c, old, nw), full(b); got != want {
				t.Fatalf("case %d: incremental %#x, full %#x", i, got, want)
			}
		}
	})
}

// TestIPv4SettersKeepChecksum applies random header rewrites and compares
// the incrementally kept checksum with a fresh computation.
func TestIPv4SettersKeepChecksum(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	for i := 0; i < 20000; i++ {
		h := make([]byte, 20+4*rng.Intn(11))
		rng.Read(h)
		h[0] = 0x40 | byte(len(h)/4)
		ip := IPv4(h)
		ip.UpdateChecksum()
		var a [4]byte
		rng.Read(a[:])
		switch i % 4 {
		case 0:
			ip.SetTTL(uint8(rng.Intn(256)))
		case 1:
			ip.SetSrc(a)
		case 2:
			ip.SetDst(a)
		case 3:
			ip.SetTOS(uint8(rng.Intn(256)))
		}
		if got, want := ip.Checksum(), ip.CalculateChecksum(); got != want {
			t.Fatalf("case %d: kept %#x, recomputed %#x", i, got, want)
		}
		if !ip.IsChecksumValid() {
			t.Fatalf("case %d: header invalid after setter", i)
		}
	}
}

// TestPacketRewritesKeepChecksums runs the NAT-style rewrites on every
// golden frame and checks that the IPv4 and L4 checksums stay equal to a
// full recomputation.
func TestPacketRewritesKeepChecksums(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, g := range goldens(t) {
		t.Run(g.name, func(t *testing.T) {
			for i := 0; i < 200; i++ {
				p := parse(append([]byte(nil), g.frame...))
				var a4 [4]byte
				var a6 [16]byte
				rng.Read(a4[:])
				rng.Read(a6[:])
				port := uint16(rng.Intn(0x10000))
				switch i % 4 {
				case 0:
					p.SetIPv4Src(a4)
					p.SetIPv6Src(a6)
				case 1:
					p.SetIPv4Dst(a4)
					p.SetIPv6Dst(a6)
				case 2:
					if u := p.UDP(); u != nil {
						u.SetSrcPort(port)
					}
					if tc := p.TCP(); tc != nil {
						tc.SetDstPort(port)
					}
				case 3:
					if ic := p.ICMP(); ic != nil {
						ic.SetTypeCode(uint8(port>>8), uint8(port))
					}
					if u := p.UDP(); u != nil {
						u.SetDstPort(port)
					}
					if tc := p.TCP(); tc != nil {
						tc.SetSrcPort(port)
					}
				}
				if ip := p.IPv4(); ip != nil && ip.Checksum() != ip.CalculateChecksum() {
					t.Fatalf("rewrite %d: IPv4 checksum %#x, recomputed %#x", i, ip.Checksum(), ip.CalculateChecksum())
				}
				if want, ok := p.ComputeL4Checksum(); ok {
					var got uint16
					switch p.L4Proto {
					case ProtoTCP:
						got = p.TCP().Checksum()
					case ProtoUDP:
						got = p.UDP().Checksum()
					default:
						got = p.ICMP().Checksum()
					}
					if got != want || !p.L4ChecksumValid() {
						t.Fatalf("rewrite %d: L4 checksum %#x, recomputed %#x", i, got, want)
					}
				}
			}
		})
	}
}

func TestRewriteWrongFamily(t *testing.T) {
	p := parse(frameOf(t, "ipv6_udp"))
	if p.SetIPv4Src([4]byte{1, 2, 3, 4}) {
		t.Error("SetIPv4Src on IPv6 reported success")
	}
	q := parse(frameOf(t, "ipv4_udp"))
	if q.SetIPv6Dst([16]byte{1}) {
		t.Error("SetIPv6Dst on IPv4 reported success")
	}
}

func TestChecksumAllocs(t *testing.T) {
	b := make([]byte, 1500)
	p := parse(frameOf(t, "ipv4_tcp"))
	n := testing.AllocsPerRun(100, func() {
		Checksum(b, 0)
		p.SetL4Checksum()
		p.SetIPv4Src([4]byte{1, 2, 3, 4})
		p.IPv4().SetTTL(3)
	})
	if n != 0 {
		t.Errorf("%v allocs", n)
	}
}
