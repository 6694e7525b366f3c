package pipeline

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// gwByteChooser makes the property harness's choices from a fuzzer's
// bytes: one byte for a choice among at most 256, two for more. Past the
// end every choice is 0, so every input is a valid (if short) scenario.
type gwByteChooser struct {
	b []byte
	i int
}

func (c *gwByteChooser) next() int {
	if c.i >= len(c.b) {
		return 0
	}
	c.i++
	return int(c.b[c.i-1])
}

func (c *gwByteChooser) IntN(n int) int {
	if n <= 1 {
		return 0
	}
	v := c.next()
	if n > 256 {
		v = v<<8 | c.next()
	}
	return v % n
}

// FuzzGatewayCacheEqualsSteps is the property test driven by the fuzzer:
// its bytes choose the interfaces, routes, neighbors, FDB, ACL, flows,
// packets (with a byte of some frames overwritten) and configuration
// changes. A cached result must always equal what the steps produce, and
// nothing may panic.
func FuzzGatewayCacheEqualsSteps(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add([]byte{3, 0, 1, 200, 1, 10, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	for i := range 6 {
		r := rand.New(rand.NewPCG(0x5eed, uint64(i)))
		b := make([]byte, 256<<(i%3))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &gwByteChooser{b: data}
		g := gwNewProp(c)
		if g == nil {
			return
		}
		g.mutate = true
		if msg := g.run(c, 1+c.IntN(12)); msg != "" {
			t.Fatalf("cache hit differs from the steps\n%s\nconfiguration and changes:\n  %s", msg, strings.Join(g.log, "\n  "))
		}
	})
}
