package pipeline

// MaxBatch is the largest number of packets in one Batch. Rings are polled
// for at most this many frames at a time.
const MaxBatch = 64

// Batch is a fixed inline array of packets that a worker fills from one
// receive queue, runs through the stages, and then flushes. The worker owns
// the batch and reuses it for every poll; stages must not keep references to
// it or to its packets past Process.
type Batch struct {
	Len  int
	Pkts [MaxBatch]Packet
}

// Packets returns the live part of the batch.
func (b *Batch) Packets() []Packet { return b.Pkts[:b.Len] }

// Stage is one step of the pipeline. Process looks at every packet of the
// batch whose Verdict is still VerdictNone (packets already decided are left
// alone) and may set a verdict or rewrite the frame in place. Stages never
// allocate, block, or do I/O.
type Stage interface {
	Name() string
	Process(b *Batch)
}

// Pipeline runs its stages in order. It is built once per configuration
// generation and is owned by one worker.
type Pipeline struct {
	stages []Stage
}

// NewPipeline returns a pipeline of the given stages in order.
func NewPipeline(stages ...Stage) *Pipeline {
	return &Pipeline{stages: append([]Stage(nil), stages...)}
}

// Stages returns the stages in order. The caller must not modify the slice.
func (p *Pipeline) Stages() []Stage { return p.stages }

// Process runs every stage over b, then gives every packet still without a
// verdict the drop reason DropNoVerdict, so nothing leaves uncounted.
func (p *Pipeline) Process(b *Batch) {
	for _, s := range p.stages {
		s.Process(b)
	}
	for i := 0; i < b.Len; i++ {
		if b.Pkts[i].Verdict == VerdictNone {
			b.Pkts[i].Drop(DropNoVerdict)
		}
	}
}
