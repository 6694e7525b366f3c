package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// XDP verdicts (uapi enum xdp_action).
const (
	xdpAborted = 0
	xdpDrop    = 1
	xdpPass    = 2
	xdpTX      = 3
)

// xdpMD mirrors struct xdp_md, the context BPF_PROG_RUN takes for XDP.
type xdpMD struct {
	Data           uint32
	DataEnd        uint32
	DataMeta       uint32
	IngressIfindex uint32
	RxQueueIndex   uint32
	EgressIfindex  uint32
}

// progLicense: the helpers used are not GPL-only, but the kernel wants a
// license string; dual licensing keeps every helper available.
const progLicense = "Dual MIT/GPL"

// Counter is a one-slot per-CPU packet counter shared by a program and Go.
type Counter struct{ m *ebpf.Map }

func newCounter(name string) (*Counter, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       name,
		Type:       ebpf.PerCPUArray,
		KeySize:    4,
		ValueSize:  8,
		MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("create counter map: %w", err)
	}
	return &Counter{m: m}, nil
}

// Read sums the counter over all CPUs.
func (c *Counter) Read() (uint64, error) {
	var per []uint64
	if err := c.m.Lookup(uint32(0), &per); err != nil {
		return 0, fmt.Errorf("read counter: %w", err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}

// Close releases the map.
func (c *Counter) Close() error { return c.m.Close() }

// incrementCounter emits "n = ++counter[0]" with the previous value left in
// R7. Clobbers R0-R5 (helper call); R6-R9 survive.
func incrementCounter(c *Counter, fail string) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.R10, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, c.m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, fail),
		// Per-CPU slot: no other CPU writes it, so a plain add is exact.
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
	}
}

// GenProgram is the generator program and its sent-packet counter.
type GenProgram struct {
	Prog *ebpf.Program
	Sent *Counter
}

// Close releases the program and its map.
func (g *GenProgram) Close() error {
	return errors.Join(g.Prog.Close(), g.Sent.Close())
}

// NewGenProgram loads the generator: it counts every packet and returns
// XDP_TX, which in live-frames mode sends the frame out of the ingress
// interface. With flows > 1 it writes source port base + n%flows into each
// frame, n being the per-CPU count (the generator thread is pinned, so that
// is one sequence), and, if partial != 0, the matching UDP checksum (see UDPPartialSum),
// so every frame is correct whatever a recycled page held before.
func NewGenProgram(flows int, base, partial uint16) (*GenProgram, error) {
	if flows < 1 || flows > 0xffff {
		return nil, fmt.Errorf("%w: flows %d", ErrFrameSpec, flows)
	}
	sent, err := newCounter("vsb_gen_sent")
	if err != nil {
		return nil, err
	}
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)} // keep ctx over the helper call
	insns = append(insns, incrementCounter(sent, "abort")...)
	if flows > 1 {
		insns = append(insns,
			asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // ctx->data
			asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // ctx->data_end
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, HeaderLen),
			asm.JGT.Reg(asm.R4, asm.R3, "abort"),
			asm.Mod.Imm(asm.R7, int32(flows)),
			asm.Add.Imm(asm.R7, int32(base)), // host-order port
		)
		if partial != 0 {
			insns = append(insns,
				// csum = ~fold(partial + port), 0 -> 0xffff; two folds suffice below 2^17.
				asm.Mov.Reg(asm.R5, asm.R7),
				asm.Add.Imm(asm.R5, int32(partial)),
				asm.Mov.Reg(asm.R8, asm.R5),
				asm.RSh.Imm(asm.R8, 16),
				asm.And.Imm(asm.R5, 0xffff),
				asm.Add.Reg(asm.R5, asm.R8),
				asm.Mov.Reg(asm.R8, asm.R5),
				asm.RSh.Imm(asm.R8, 16),
				asm.And.Imm(asm.R5, 0xffff),
				asm.Add.Reg(asm.R5, asm.R8),
				asm.Xor.Imm(asm.R5, 0xffff),
				asm.JNE.Imm(asm.R5, 0, "store_csum"),
				asm.Mov.Imm(asm.R5, 0xffff),
				asm.HostTo(asm.BE, asm.R5, asm.Half).WithSymbol("store_csum"),
				asm.StoreMem(asm.R2, offUDPCsum, asm.R5, asm.Half),
			)
		}
		insns = append(insns,
			asm.HostTo(asm.BE, asm.R7, asm.Half),
			asm.StoreMem(asm.R2, offUDPSrcPort, asm.R7, asm.Half),
		)
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R0, xdpTX),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpAborted).WithSymbol("abort"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "vsb_gen",
		Type:         ebpf.XDP,
		Instructions: insns,
		License:      progLicense,
	})
	if err != nil {
		sent.Close()
		return nil, fmt.Errorf("load generator program: %w", err)
	}
	return &GenProgram{Prog: prog, Sent: sent}, nil
}

// SinkProgram drops and counts IPv4/UDP frames and passes everything else,
// so pings (warm-up, forwarding check) still reach the namespace's stack.
type SinkProgram struct {
	Prog *ebpf.Program
	Recv *Counter
}

// Close releases the program and its map.
func (s *SinkProgram) Close() error {
	return errors.Join(s.Prog.Close(), s.Recv.Close())
}

// NewSinkProgram loads the sink.
func NewSinkProgram() (*SinkProgram, error) {
	recv, err := newCounter("vsb_sink_recv")
	if err != nil {
		return nil, err
	}
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, udpOff),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R4, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R4, int32(wire16(0x0800)), "pass"),
		asm.LoadMem(asm.R4, asm.R2, ethHdrLen+9, asm.Byte),
		asm.JNE.Imm(asm.R4, 17, "pass"),
	}
	insns = append(insns, incrementCounter(recv, "drop")...)
	insns = append(insns,
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("drop"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "vsb_sink",
		Type:         ebpf.XDP,
		Instructions: insns,
		License:      progLicense,
	})
	if err != nil {
		recv.Close()
		return nil, fmt.Errorf("load sink program: %w", err)
	}
	return &SinkProgram{Prog: prog, Recv: recv}, nil
}

// NewPassProgram loads a plain XDP_PASS program. Attached to a veth it turns
// on the veth's NAPI, which a veth needs before it accepts redirected XDP
// frames from its peer.
func NewPassProgram() (*ebpf.Program, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "vsb_pass",
		Type:         ebpf.XDP,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
		License:      progLicense,
	})
	if err != nil {
		return nil, fmt.Errorf("load pass program: %w", err)
	}
	return prog, nil
}

// NewRedirectProgram loads "return bpf_redirect(outIfindex, 0)", the
// xdp-bench redirect reference.
func NewRedirectProgram(outIfindex int) (*ebpf.Program, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "vsb_redirect",
		Type: ebpf.XDP,
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R1, int32(outIfindex)),
			asm.Mov.Imm(asm.R2, 0),
			asm.FnRedirect.Call(),
			asm.Return(),
		},
		License: progLicense,
	})
	if err != nil {
		return nil, fmt.Errorf("load redirect program: %w", err)
	}
	return prog, nil
}

// RedirectMapProgram is "return bpf_redirect_map(&devmap, 0, 0)" with its
// one-entry DEVMAP, the xdp-bench redirect-map reference.
type RedirectMapProgram struct {
	Prog   *ebpf.Program
	DevMap *ebpf.Map
}

// Close releases the program and its map.
func (r *RedirectMapProgram) Close() error {
	return errors.Join(r.Prog.Close(), r.DevMap.Close())
}

// NewRedirectMapProgram loads the devmap redirect towards outIfindex.
func NewRedirectMapProgram(outIfindex int) (*RedirectMapProgram, error) {
	dm, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "vsb_devmap",
		Type:       ebpf.DevMap,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("create devmap: %w", err)
	}
	if err := dm.Put(uint32(0), uint32(outIfindex)); err != nil {
		dm.Close()
		return nil, fmt.Errorf("fill devmap: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "vsb_redir_map",
		Type: ebpf.XDP,
		Instructions: asm.Instructions{
			asm.LoadMapPtr(asm.R1, dm.FD()),
			asm.Mov.Imm(asm.R2, 0),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnRedirectMap.Call(),
			asm.Return(),
		},
		License: progLicense,
	})
	if err != nil {
		dm.Close()
		return nil, fmt.Errorf("load redirect-map program: %w", err)
	}
	return &RedirectMapProgram{Prog: prog, DevMap: dm}, nil
}

// wire16 is the value a BPF half-word load (host-endian) yields for the
// big-endian wire value v.
func wire16(v uint16) uint16 {
	b := [2]byte{byte(v >> 8), byte(v)}
	return binary.NativeEndian.Uint16(b[:])
}
