package peephole

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/vswitch/vswitch/pipeline"
)

// responders is one set of responder stages over tables of their own.
type responders struct {
	arp *ARPStage
	nd  *NDStage
	dns *DNSStage
}

func newResponders(tb testing.TB) responders {
	return responders{NewARPStage(nbrTable(tb)), NewNDStage(nbrTable(tb)), NewDNSStage(testZones(tb))}
}

func (r responders) run(b *pipeline.Batch) {
	r.arp.Process(b)
	r.nd.Process(b)
	r.dns.Process(b)
}

func (r responders) stats() string {
	return fmt.Sprintf("%+v %+v %+v", r.arp.Stats(), r.nd.Stats(), r.dns.Stats())
}

// FuzzResponderKinds: skipping on the batch summary changes nothing. A
// batch of up to three arbitrary frames, parsed by ParseStage, goes through
// the ARP, ND and DNS stages once with the summary ParseStage set and once
// with it unknown (every stage then looks at every packet); verdicts,
// frames and every counter must agree.
func FuzzResponderKinds(f *testing.F) {
	arp := arpFrame(f, arpRequest(0, nbrIP(nbrBound4)))
	ns := nsFrame(f, nsRequest(0, nbrBound6))
	q := testFrame(f, false, packMsg(f, query("web.vs.local.", dns.TypeA)), false)
	frag := testFrame(f, false, packMsg(f, query("web.vs.local.", dns.TypeA)), true)
	other := testFrame(f, true, nil, false)
	other[14+40+3] = 9 // UDP to port 9
	f.Add(other, other, other)
	f.Add(other, arp, other)
	f.Add(ns, other, []byte{})
	f.Add(q, other, other)
	f.Add(q, other, frag)
	f.Add(frag, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, f1, f2, f3 []byte) {
		var frames [][]byte
		for _, fr := range [][]byte{f1, f2, f3} {
			if len(fr) > 0 && len(fr) <= 1600 {
				frames = append(frames, fr)
			}
		}
		var b [2]pipeline.Batch
		for k := range b {
			b[k].Len = len(frames)
			for i, fr := range frames {
				p := &b[k].Pkts[i]
				p.Data = append(make([]byte, 0, testFrameCap), fr...)
				p.Reset()
			}
			pipeline.ParseStage{}.Process(&b[k])
		}
		if b[0].Kinds&pipeline.KindsKnown == 0 {
			t.Fatal("ParseStage left the summary unknown")
		}
		b[1].Kinds = 0
		r := [2]responders{newResponders(t), newResponders(t)}
		for k := range b {
			r[k].run(&b[k])
		}
		for i := range frames {
			x, y := &b[0].Pkts[i], &b[1].Pkts[i]
			if x.Verdict != y.Verdict || x.Reason != y.Reason || string(x.Data) != string(y.Data) {
				t.Fatalf("packet %d: with summary %v/%v, without %v/%v (kinds %#x)", i, x.Verdict, x.Reason, y.Verdict, y.Reason, b[0].Kinds)
			}
		}
		if a, c := r[0].stats(), r[1].stats(); a != c {
			t.Fatalf("counters differ (kinds %#x):\nwith summary    %s\nwithout summary %s", b[0].Kinds, a, c)
		}
	})
}
