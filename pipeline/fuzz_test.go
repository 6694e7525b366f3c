package pipeline

import (
	"testing"
)

// FuzzParse feeds arbitrary frames to Parse: it must never panic, a good
// parse must leave offsets that every view can use without going out of
// the frame, and a failed one must say why.
func FuzzParse(f *testing.F) {
	for _, g := range goldens(f) {
		f.Add(g.frame)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, frame []byte) {
		p := &Packet{Data: frame}
		p.Reset()
		ok := p.Parse()
		checkInvariants(t, p, ok)
		if !ok {
			return
		}
		// Rewrites must stay in bounds too; run them on a copy so the
		// fuzzer's input is not changed under it.
		q := *p
		q.Data = append([]byte(nil), frame...)
		q.SetIPv4Src([4]byte{192, 0, 2, 1})
		q.SetIPv6Dst([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
		if u := q.UDP(); u != nil {
			u.SetSrcPort(1)
		}
		if tc := q.TCP(); tc != nil {
			tc.SetDstPort(2)
		}
		if ic := q.ICMP(); ic != nil {
			ic.SetTypeCode(0, 0)
		}
		if q.SetL4Checksum() && !q.L4ChecksumValid() {
			t.Fatal("SetL4Checksum left an invalid checksum")
		}
		if ip := q.IPv4(); ip != nil {
			ip.SetTTL(1)
			ip.UpdateChecksum()
			if !ip.IsChecksumValid() {
				t.Fatal("UpdateChecksum left an invalid header checksum")
			}
		}
	})
}

// FuzzChecksum holds the 8-bytes-at-a-time Checksum to the two-bytes-at-a-
// time reference.
func FuzzChecksum(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{0xff}, uint16(0xffff))
	f.Add([]byte{0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01}, uint16(0))
	f.Add(make([]byte, 67), uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, initial uint16) {
		if got, want := Checksum(b, initial), naiveSum(b, initial); got != want {
			t.Fatalf("Checksum(%x, %#x) = %#x, naive %#x", b, initial, got, want)
		}
		if len(b) > 1 {
			if got, want := Checksum(b[1:], initial), naiveSum(b[1:], initial); got != want {
				t.Fatalf("unaligned: Checksum = %#x, naive %#x", got, want)
			}
		}
	})
}
