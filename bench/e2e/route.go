package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"

	"github.com/vswitch/vswitch/switch/affinity"
)

// RoutedGenConfig is the generator for a device under test that routes:
// such a device rewrites each frame in place (MACs, TTL, IPv4 checksum),
// and live frames keep their page contents across page-pool recycling, so
// after one lap of the pool the plain generator would re-send the router's
// output (dst MAC = the sink's) and the router would drop it as not its
// own. This generator restores the 42-byte Ethernet/IPv4/UDP header from
// the template on every packet (the anchors' "gen -R").
//
// Flows are Frame.Flows source ports times DstPorts destination ports:
// packet n has source port Frame.SrcPort + n%Flows and destination port
// Frame.DstPort + (n/Flows)%DstPorts, so more than 64 Ki flows are possible.
type RoutedGenConfig struct {
	GenConfig
	DstPorts int // destination ports, >= 1
}

// TotalFlows is the number of distinct 5-tuples the generator cycles through.
func (c RoutedGenConfig) TotalFlows() int { return c.Frame.Flows * c.DstPorts }

// validate checks the port ranges on top of the frame.
func (c RoutedGenConfig) validate() error {
	if err := c.Frame.Validate(); err != nil {
		return err
	}
	if c.DstPorts < 1 || int(c.Frame.DstPort)+c.DstPorts-1 > 0xffff {
		return fmt.Errorf("%w: %d destination ports from %d overflow the port range", ErrFrameSpec, c.DstPorts, c.Frame.DstPort)
	}
	return nil
}

// RoutedPartialSum is the folded one's-complement sum of frame f's UDP
// pseudo header, header and payload without both ports and the checksum
// field; the program adds the per-packet ports to it.
func RoutedPartialSum(f []byte) uint16 {
	dport := binary.BigEndian.Uint16(f[udpOff+2:])
	// One's-complement subtraction of the destination port that
	// UDPPartialSum included.
	return fold(uint32(UDPPartialSum(f)) + uint32(^dport))
}

// RoutedChecksum is the UDP checksum of a frame with partial sum partial
// (RoutedPartialSum) and the given ports. It mirrors the program.
func RoutedChecksum(partial, sport, dport uint16) uint16 {
	c := ^fold(uint32(partial) + uint32(sport) + uint32(dport))
	if c == 0 {
		c = 0xffff // 0 means "no checksum" in UDP over IPv4
	}
	return c
}

// NewRoutedGenProgram loads the generator of cfg for template frame tmpl
// (BuildUDPFrame of cfg.Frame): count, restore the header, write the
// packet's ports and UDP checksum, XDP_TX.
func NewRoutedGenProgram(cfg RoutedGenConfig, tmpl []byte) (*GenProgram, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(tmpl) < HeaderLen {
		return nil, fmt.Errorf("%w: template of %d bytes", ErrFrameSpec, len(tmpl))
	}
	sent, err := newCounter("vsr_gen_sent")
	if err != nil {
		return nil, err
	}
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)} // keep ctx over the helper call
	insns = append(insns, incrementCounter(sent, "abort")...)
	insns = append(insns,
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // ctx->data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // ctx->data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, HeaderLen),
		asm.JGT.Reg(asm.R4, asm.R3, "abort"),
	)
	// The header as immediate stores: 10 words and a half word. Memory
	// holds the bytes in wire order, so each immediate is the host-order
	// reading of those bytes.
	for off := 0; off+4 <= HeaderLen; off += 4 {
		insns = append(insns, asm.StoreImm(asm.R2, int16(off), int64(int32(binary.NativeEndian.Uint32(tmpl[off:]))), asm.Word))
	}
	if HeaderLen%4 == 2 {
		off := HeaderLen - 2
		insns = append(insns, asm.StoreImm(asm.R2, int16(off), int64(int16(binary.NativeEndian.Uint16(tmpl[off:]))), asm.Half))
	}
	if cfg.TotalFlows() > 1 {
		insns = append(insns,
			asm.Mov.Reg(asm.R8, asm.R7), // R8 = sport = base + n % flows
			asm.Mod.Imm(asm.R8, int32(cfg.Frame.Flows)),
			asm.Add.Imm(asm.R8, int32(cfg.Frame.SrcPort)),
			asm.Mov.Reg(asm.R9, asm.R7), // R9 = dport = base + (n / flows) % dports
			asm.Div.Imm(asm.R9, int32(cfg.Frame.Flows)),
			asm.Mod.Imm(asm.R9, int32(cfg.DstPorts)),
			asm.Add.Imm(asm.R9, int32(cfg.Frame.DstPort)),
		)
		if cfg.Frame.Checksum {
			insns = append(insns,
				// csum = ~fold(partial + sport + dport), 0 -> 0xffff; the sum
				// is below 2^18, two folds suffice.
				asm.Mov.Reg(asm.R5, asm.R8),
				asm.Add.Reg(asm.R5, asm.R9),
				asm.Add.Imm(asm.R5, int32(RoutedPartialSum(tmpl))),
				asm.Mov.Reg(asm.R4, asm.R5),
				asm.RSh.Imm(asm.R4, 16),
				asm.And.Imm(asm.R5, 0xffff),
				asm.Add.Reg(asm.R5, asm.R4),
				asm.Mov.Reg(asm.R4, asm.R5),
				asm.RSh.Imm(asm.R4, 16),
				asm.And.Imm(asm.R5, 0xffff),
				asm.Add.Reg(asm.R5, asm.R4),
				asm.Xor.Imm(asm.R5, 0xffff),
				asm.JNE.Imm(asm.R5, 0, "store_csum"),
				asm.Mov.Imm(asm.R5, 0xffff),
				asm.HostTo(asm.BE, asm.R5, asm.Half).WithSymbol("store_csum"),
				asm.StoreMem(asm.R2, offUDPCsum, asm.R5, asm.Half),
			)
		}
		insns = append(insns,
			asm.HostTo(asm.BE, asm.R8, asm.Half),
			asm.StoreMem(asm.R2, offUDPSrcPort, asm.R8, asm.Half),
			asm.HostTo(asm.BE, asm.R9, asm.Half),
			asm.StoreMem(asm.R2, offUDPSrcPort+2, asm.R9, asm.Half),
		)
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R0, xdpTX),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpAborted).WithSymbol("abort"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "vsr_gen",
		Type:         ebpf.XDP,
		Instructions: insns,
		License:      progLicense,
	})
	if err != nil {
		sent.Close()
		return nil, fmt.Errorf("load routed generator program: %w", err)
	}
	return &GenProgram{Prog: prog, Sent: sent}, nil
}

// RunRoutedGenerator sends like RunGenerator (same pacing of BPF_PROG_RUN
// calls, same pinning, same result) with the routed generator program.
func RunRoutedGenerator(ctx context.Context, cfg RoutedGenConfig) (GenResult, error) {
	var res GenResult
	if cfg.CallTime <= 0 {
		cfg.CallTime = 500 * time.Millisecond
	}
	if cfg.CPU >= 0 {
		if err := PinProcess(cfg.CPU, 0); err != nil {
			return res, err
		}
		if err := affinity.PinThread(cfg.CPU); err != nil {
			return res, err
		}
	}
	ifc, err := net.InterfaceByName(cfg.Ifname)
	if err != nil {
		return res, fmt.Errorf("generator interface: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return res, err
	}
	frame, err := BuildUDPFrame(cfg.Frame)
	if err != nil {
		return res, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return res, fmt.Errorf("remove memlock limit: %w", err)
	}
	gp, err := NewRoutedGenProgram(cfg, frame)
	if err != nil {
		return res, err
	}
	defer gp.Close()

	return sendLive(ctx, gp, frame, ifc.Index, cfg.Ifname, cfg.Duration, cfg.CallTime)
}

// RoutedGenArgs renders the flags of RoutedGenMain for cfg: GenArgs plus
// the destination port count.
func RoutedGenArgs(cfg RoutedGenConfig) []string {
	return append(GenArgs(cfg.GenConfig), "-dports", fmt.Sprint(cfg.DstPorts))
}

// RoutedGenMain is the routed generator subcommand: GenMain's flags plus
// -dports; prints a GenResult as one JSON line. It returns the exit code.
func RoutedGenMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("routed-gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                      RoutedGenConfig
		smac, dmac, sip, dip     string
		size, flows, sport, dprt int
	)
	fs.StringVar(&cfg.Ifname, "if", "", "interface to send on (in the current netns)")
	fs.StringVar(&smac, "smac", "", "source MAC")
	fs.StringVar(&dmac, "dmac", "", "destination MAC (the router's)")
	fs.StringVar(&sip, "sip", "", "source IPv4")
	fs.StringVar(&dip, "dip", "", "destination IPv4 (behind the router)")
	fs.IntVar(&size, "size", 64, "L2 frame size without FCS")
	fs.IntVar(&flows, "flows", 1, "number of UDP source ports, cycled per packet")
	fs.IntVar(&cfg.DstPorts, "dports", 1, "number of UDP destination ports, advanced after each lap of the source ports")
	fs.IntVar(&sport, "sport", 1024, "first UDP source port")
	fs.IntVar(&dprt, "dport", 9, "first UDP destination port")
	fs.BoolVar(&cfg.Frame.Checksum, "csum", true, "write UDP checksums (false: 0)")
	fs.DurationVar(&cfg.Duration, "dur", 10*time.Second, "how long to send")
	fs.DurationVar(&cfg.CallTime, "call", 500*time.Millisecond, "target length of one BPF_PROG_RUN call")
	fs.IntVar(&cfg.CPU, "cpu", 0, "core to pin to (-1: no pinning)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	f := &cfg.Frame
	f.Size, f.Flows = size, flows
	if sport < 0 || sport > 0xffff || dprt < 0 || dprt > 0xffff {
		fmt.Fprintln(stderr, "routed-gen: ports must be in 0..65535")
		return 2
	}
	f.SrcPort, f.DstPort = uint16(sport), uint16(dprt)
	var err error
	if f.SrcMAC, err = net.ParseMAC(smac); err == nil {
		f.DstMAC, err = net.ParseMAC(dmac)
	}
	if err != nil {
		fmt.Fprintln(stderr, "routed-gen:", err)
		return 2
	}
	f.SrcIP, f.DstIP = net.ParseIP(sip), net.ParseIP(dip)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := RunRoutedGenerator(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "routed-gen:", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, "routed-gen:", err)
		return 1
	}
	return 0
}
