package e2e

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/cilium/ebpf"
)

func TestRoutedChecksumMatchesBuiltFrame(t *testing.T) {
	tmplSpec := testSpec(64, 1, true)
	tmpl, err := BuildUDPFrame(tmplSpec)
	if err != nil {
		t.Fatal(err)
	}
	partial := RoutedPartialSum(tmpl)
	for _, sport := range []uint16{0, 1, 1024, 2023, 40000, 0xffff} {
		for _, dport := range []uint16{0, 9, 20000, 20099, 0xffff} {
			spec := tmplSpec
			spec.SrcPort, spec.DstPort = sport, dport
			f, err := BuildUDPFrame(spec)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := RoutedChecksum(partial, sport, dport), binary.BigEndian.Uint16(f[offUDPCsum:]); got != want {
				t.Errorf("ports %d -> %d: checksum %#x, want %#x", sport, dport, got, want)
			}
		}
	}
}

func TestRoutedGenProgramRestoresHeaderAndPorts(t *testing.T) {
	requirePriv(t)
	for _, tc := range []struct {
		name          string
		flows, dports int
	}{
		{"1flow", 1, 1},
		{"1000x1", 1000, 1},
		{"1000x3", 1000, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pinTestToCPU0(t)
			cfg := RoutedGenConfig{GenConfig: GenConfig{Frame: testSpec(64, tc.flows, true)}, DstPorts: tc.dports}
			cfg.Frame.DstPort = 20000
			tmpl, err := BuildUDPFrame(cfg.Frame)
			if err != nil {
				t.Fatal(err)
			}
			gp, err := NewRoutedGenProgram(cfg, tmpl)
			if err != nil {
				t.Fatal(err)
			}
			defer gp.Close()
			in := append([]byte(nil), tmpl...)
			out := make([]byte, len(tmpl))
			runs := tc.flows*tc.dports + 7 // wraps around
			for i := range runs {
				// What a router leaves in the page: other MACs, TTL - 1.
				for j := range 12 {
					in[j] ^= 0x5a
				}
				in[ethHdrLen+8]--
				ret, err := gp.Prog.Run(&ebpf.RunOptions{Data: in, DataOut: out})
				if err != nil {
					t.Fatal(err)
				}
				if ret != xdpTX {
					t.Fatalf("run %d: verdict %d, want XDP_TX", i, ret)
				}
				spec := cfg.Frame
				spec.SrcPort = uint16(int(cfg.Frame.SrcPort) + i%tc.flows)
				spec.DstPort = uint16(int(cfg.Frame.DstPort) + (i/tc.flows)%tc.dports)
				want, err := BuildUDPFrame(spec)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out, want) {
					t.Fatalf("run %d: frame\n%x\nwant\n%x", i, out[:HeaderLen], want[:HeaderLen])
				}
				copy(in, out)
			}
		})
	}
}

func TestRoutedSinkProgramCountsOnlyRoutedFrames(t *testing.T) {
	requirePriv(t)
	// The second MAC's first word has its top bit set in either byte order.
	for _, mac := range []net.HardwareAddr{{0x02, 0x76, 0x73, 0x72, 0x00, 0x02}, {0x82, 0x00, 0x00, 0x80, 0xfe, 0xff}} {
		t.Run(mac.String(), func(t *testing.T) {
			pinTestToCPU0(t)
			s, err := NewRoutedSinkProgram(mac, 63)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			routed := testSpec(64, 1, true)
			routed.DstMAC, routed.TTL = mac, 63
			unrouted := testSpec(64, 1, true)
			unrouted.DstMAC, unrouted.TTL = mac, 64
			wrongMAC := testSpec(64, 1, true)
			wrongMAC.TTL = 63
			for _, tc := range []struct {
				name          string
				spec          FrameSpec
				icmp          bool
				verdict       uint32
				routed, other uint64
			}{
				{"routed", routed, false, xdpDrop, 1, 0},
				{"ttl-unchanged", unrouted, false, xdpDrop, 1, 1},
				{"other-mac", wrongMAC, false, xdpDrop, 1, 2},
				{"icmp", routed, true, xdpPass, 1, 2},
			} {
				f, err := BuildUDPFrame(tc.spec)
				if err != nil {
					t.Fatal(err)
				}
				if tc.icmp {
					f[ethHdrLen+9] = 1
				}
				ret, err := s.Prog.Run(&ebpf.RunOptions{Data: f})
				if err != nil {
					t.Fatal(err)
				}
				r, err1 := s.Routed.Read()
				o, err2 := s.Other.Read()
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if ret != tc.verdict || r != tc.routed || o != tc.other {
					t.Fatalf("%s: verdict %d routed %d other %d, want %d %d %d", tc.name, ret, r, o, tc.verdict, tc.routed, tc.other)
				}
			}
		})
	}
}
