package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// RoutedSinkProgram drops IPv4/UDP frames and counts them in two
// counters: Routed, frames that a router delivered (destination MAC = the
// sink's, TTL = the generator's TTL - 1), and Other, every other UDP frame
// (e.g. one flooded or bridged unchanged). A routed benchmark counts only
// Routed, so a DUT that floods instead of routing cannot pass for a fast
// router. Everything else (ICMP of the ping check) is passed.
type RoutedSinkProgram struct {
	Prog   *ebpf.Program
	Routed *Counter
	Other  *Counter
}

// Close releases the program and its maps.
func (s *RoutedSinkProgram) Close() error {
	return errors.Join(s.Prog.Close(), s.Routed.Close(), s.Other.Close())
}

// NewRoutedSinkProgram loads the sink for frames to mac with TTL ttl.
func NewRoutedSinkProgram(mac net.HardwareAddr, ttl uint8) (*RoutedSinkProgram, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("%w: sink MAC %v", ErrFrameSpec, mac)
	}
	routed, err := newCounter("vsr_sink_routed")
	if err != nil {
		return nil, err
	}
	other, err := newCounter("vsr_sink_other")
	if err != nil {
		routed.Close()
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
		// Routed: MAC (a word and a half word, compared as the host-order
		// reading of the wire bytes) and TTL.
		asm.LoadMem(asm.R4, asm.R2, 0, asm.Word),
		asm.JNE.Imm32(asm.R4, int32(binary.NativeEndian.Uint32(mac[0:4])), "other"),
		asm.LoadMem(asm.R4, asm.R2, 4, asm.Half),
		asm.JNE.Imm(asm.R4, int32(binary.NativeEndian.Uint16(mac[4:6])), "other"),
		asm.LoadMem(asm.R4, asm.R2, ethHdrLen+8, asm.Byte),
		asm.JNE.Imm(asm.R4, int32(ttl), "other"),
	}
	insns = append(insns, incrementCounter(routed, "drop")...)
	insns = append(insns, asm.Ja.Label("drop"))
	other0 := incrementCounter(other, "drop")
	other0[0] = other0[0].WithSymbol("other")
	insns = append(insns, other0...)
	insns = append(insns,
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("drop"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "vsr_sink",
		Type:         ebpf.XDP,
		Instructions: insns,
		License:      progLicense,
	})
	if err != nil {
		routed.Close()
		other.Close()
		return nil, fmt.Errorf("load routed sink program: %w", err)
	}
	return &RoutedSinkProgram{Prog: prog, Routed: routed, Other: other}, nil
}
