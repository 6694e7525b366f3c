package pipeline

import (
	"sync/atomic"
	"testing"
)

// bytePicker turns the fuzzer's bytes into the choices of genRule and
// genKey; past the end every choice is 0.
type bytePicker struct {
	b []byte
	i int
}

func (bp *bytePicker) next() int {
	if bp.i >= len(bp.b) {
		return 0
	}
	bp.i++
	return int(bp.b[bp.i-1])
}

func (bp *bytePicker) pick(n int) int {
	if n <= 1 {
		return 0
	}
	v := bp.next()
	if n > 256 {
		v = v<<8 | bp.next()
	}
	return v % n
}

// FuzzACLClassify decodes a rule set and keys from the input and checks
// that the compiled bit-vector classifier agrees with the linear
// reference on every key, and that Step neither panics nor disagrees
// with Classify.
func FuzzACLClassify(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 2, 1, 1, 3, 3, 3, 3})
	f.Add([]byte{3, 1, 1, 0, 5, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte{70, 2, 1, 255, 128, 64, 32, 16, 8, 4, 2, 1, 0, 255, 254, 253, 0x7f, 0x80, 0x81})
	f.Fuzz(func(t *testing.T, data []byte) {
		bp := &bytePicker{b: data}
		n := bp.pick(130)
		generalOneIn := bp.pick(40)
		def := bp.pick(2) == 1
		rules := make([]ACLRule, n)
		for i := range rules {
			rules[i] = genRule(bp.pick, generalOneIn)
		}
		nkeys := 4 + (len(data)-bp.i)/4
		keys := make([]FlowKey, min(nkeys, 256))
		for i := range keys {
			keys[i] = genKey(bp.pick, rules)
		}
		checkClassify(t, rules, def, keys)

		set, err := CompileACL(ACLConfig{Rules: rules, DefaultAllow: def, Established: true}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ptr atomic.Pointer[ACLSet]
		ptr.Store(set)
		step := NewACLStep(&ptr, NewConnTable(64, nil), 0)
		for i := range keys {
			p := &Packet{}
			fc := &FlowCtx{Key: keys[i]}
			_, allow := set.Classify(&keys[i])
			if got := step.Step(p, fc); allow && !got {
				t.Fatalf("key %v: Classify allows, Step denies", &keys[i])
			}
		}
	})
}
