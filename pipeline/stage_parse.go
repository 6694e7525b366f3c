package pipeline

// ParseStage parses every undecided packet's headers into offsets and drops
// malformed frames with the parser's reason. It is the first stage of every
// pipeline.
type ParseStage struct{}

// Name implements Stage.
func (ParseStage) Name() string { return "parse" }

// Process implements Stage.
// It also sets b.Kinds from the packets it parsed.
func (ParseStage) Process(b *Batch) {
	k := KindsKnown
	for i := 0; i < b.Len; i++ {
		p := &b.Pkts[i]
		if p.Verdict == VerdictNone && p.Parse() {
			k |= p.kinds()
		}
	}
	b.Kinds = k
}
