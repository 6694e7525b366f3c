package memring

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"
)

// unsafeOffset is the offset of a view's first byte from the region start.
func unsafeOffset(r *Region, b []byte) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(&r.mem[0]))
}

// mrFuzzRecord encodes one hostile write for FuzzRegionFromClient:
// position (uint16, taken modulo the header+rings area), length, bytes.
func mrFuzzRecord(pos uint16, b []byte) []byte {
	rec := []byte{byte(pos), byte(pos >> 8), byte(len(b))}
	return append(rec, b...)
}

func mrU32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func mrDescBytes(off uint64, n, flags uint32) []byte {
	b := binary.LittleEndian.AppendUint64(nil, off)
	b = binary.LittleEndian.AppendUint32(b, n)
	return binary.LittleEndian.AppendUint32(b, flags)
}

// FuzzRegionFromClient: whatever a hostile client writes over the header
// and the rings, the switch side's Rx.Recv/Release and Tx.Send/Reserve/
// Submit neither panic nor touch memory outside their own ring: every
// frame returned lies inside ring 0's partition and inside one buffer, and
// sending changes nothing outside ring 1's words, descriptors and
// partition. The region is small and reused so an execution takes
// microseconds.
func FuzzRegionFromClient(f *testing.F) {
	// A plain memfd keeps the region at 270 KiB (a hugepage region would
	// be 2 MiB to snapshot per execution).
	tryHugepages = false
	r, _, err := NewRegion("memring-fuzz", Config{QueuePairs: 1, RingSize: 64, FrameSize: 2048})
	tryHugepages = true
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	l := r.l
	ring0, ring1 := l.ringOff(0), l.ringOff(1)
	ps0 := l.partOff(0)

	// Seeds: a well-behaved client, bad descriptors, a producer jump, a
	// corrupt consumer index on the switch's ring, a scribbled header.
	var ok []byte
	for i := 0; i < 3; i++ {
		ok = append(ok, mrFuzzRecord(uint16(ring0+offDescs+uint64(i)*16), mrDescBytes(ps0+uint64(i)*2048, 60, 0))...)
	}
	ok = append(ok, mrFuzzRecord(uint16(ring0+offProducer), mrU32(3))...)
	f.Add(ok)
	bad := append([]byte(nil), ok...)
	bad = append(bad, mrFuzzRecord(uint16(ring0+offDescs+16), mrDescBytes(l.partOff(1), 60, 0))...)
	bad = append(bad, mrFuzzRecord(uint16(ring0+offDescs+32), mrDescBytes(ps0+2040, 60, 0))...)
	f.Add(bad)
	f.Add(mrFuzzRecord(uint16(ring0+offProducer), mrU32(65)))
	f.Add(mrFuzzRecord(uint16(ring0+offProducer), mrU32(0xffffffff)))
	f.Add(mrFuzzRecord(uint16(ring1+offConsumer), mrU32(7)))
	f.Add(append(mrFuzzRecord(uint16(ring1+offProducer), mrU32(0xfffffff0)), mrFuzzRecord(uint16(ring1+offConsumer), mrU32(0xffffffd0))...))
	f.Add(mrFuzzRecord(0, bytes.Repeat([]byte{0xff}, 64)))

	shared := l.buffersOff // header and rings: what the fuzzer writes over
	before := make([]byte, l.size)
	frames := make([][]byte, 40)
	for i := range frames {
		frames[i] = make([]byte, 14+i*50)
		frames[i][0] = byte(i)
	}
	out := make([][]byte, 48)
	lens := make([]int, 64)

	f.Fuzz(func(t *testing.T, data []byte) {
		clear(r.mem[:shared])
		l.encode(r.mem[:64])
		for len(data) >= 3 {
			pos := int(binary.LittleEndian.Uint16(data)) % int(shared)
			n := min(int(data[2]), len(data)-3, int(shared)-pos)
			copy(r.mem[pos:], data[3:3+n])
			data = data[3+n:]
		}
		// A hostile header must not make OpenRegion's check panic either.
		var h [64]byte
		copy(h[:], r.mem[:64])
		_, _ = decodeHeader(&h, l.size)

		tx, rx := r.Queue(0, SideSwitch)
		for round := 0; round < 3; round++ {
			n, err := rx.Recv(out[:16*round+1])
			for _, fr := range out[:n] {
				if !mrInPart(r, 0, fr) || len(fr) < MinFrameLen || len(fr) > 2048 {
					t.Fatalf("frame of %d bytes outside ring 0's partition or length range", len(fr))
				}
				rel := uint64(uintptr(unsafeOffset(r, fr))) - ps0
				if rel%2048+uint64(len(fr)) > 2048 {
					t.Fatalf("frame at partition offset %d len %d straddles buffers", rel, len(fr))
				}
			}
			rx.Release()
			if err != nil {
				break
			}
		}

		copy(before, r.mem)
		tx.Send(frames)
		if k := tx.Reserve(64); k > 0 {
			for i := 0; i < k; i++ {
				tx.Buffer(i)[0] = 0xee
				lens[i] = 14 + i
			}
			tx.Submit(lens[:k])
		}
		// Allowed to change: ring 1's producer word and descriptors, and
		// ring 1's partition.
		mine := [][2]uint64{
			{ring1 + offProducer, ring1 + offProducer + 4},
			{ring1 + offDescs, ring1 + offDescs + 64*16},
			{l.partOff(1), l.partOff(1) + l.partLen()},
		}
		at := uint64(0)
		for _, m := range mine {
			if !bytes.Equal(before[at:m[0]], r.mem[at:m[0]]) {
				t.Fatalf("Tx wrote outside its ring in %d..%d", at, m[0])
			}
			at = m[1]
		}
		if !bytes.Equal(before[at:], r.mem[at:l.size]) {
			t.Fatalf("Tx wrote past its partition")
		}
		s := tx.Stats()
		if s.Sent > 64+40*3 { // never more than it was given
			t.Fatalf("tx stats %+v", s)
		}
	})
}
