package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

// pairResult is the part of "memring pair-bench -o json" the report uses.
type pairResult struct {
	RxFrames  uint64  `json:"rx_frames"`
	RxElapsed float64 `json:"rx_elapsed_s"`
	RxMpps    float64 `json:"rx_mpps"`
	TxFrames  uint64  `json:"tx_frames"`
	TxMpps    float64 `json:"tx_mpps"`
	Hugepages bool    `json:"hugepages"`
	Batch     int     `json:"batch"`
}

// runMemring measures memring pair-bench at one size.
func runMemring(ctx context.Context, s *settings, size int, log func(string, ...any)) e2e.CaseResult {
	res := e2e.CaseResult{
		Case: "memring", Label: "memring pair-bench (" + s.Mode + ")", Size: size, Flows: 1,
		Note: fmt.Sprintf("producer cpu %d (Reserve/Buffer/Submit), receiver process cpu %d (%s, reads byte 0 of every frame), ring 1024 x 2048 B",
			s.CPUs[0], s.CPUs[1], s.Mode),
	}
	huge, batch := false, 0
	for rep := 1; rep <= s.Reps && ctx.Err() == nil; rep++ {
		args := []string{"pair-bench", "--size", strconv.Itoa(size), "--duration", s.Duration.String(),
			"--warmup", s.Warmup.String(), "--cpus", fmt.Sprintf("%d,%d", s.CPUs[0], s.CPUs[1]),
			"--mode", s.Mode, "-o", "json"}
		cmd := exec.CommandContext(ctx, s.Memring, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		c0, _ := e2e.ReadCPUTimes()
		t0 := time.Now()
		err := cmd.Run()
		c1, _ := e2e.ReadCPUTimes()
		if err != nil {
			res.Error = fmt.Sprintf("rep %d: %v: %s", rep, err, lastLine(errOut.String()))
			break
		}
		var pr pairResult
		if err := json.Unmarshal(out.Bytes(), &pr); err != nil {
			res.Error = fmt.Sprintf("rep %d: output %q: %v", rep, out.String(), err)
			break
		}
		huge, batch = pr.Hugepages, pr.Batch
		r := e2e.Rep{
			Sent: pr.TxFrames, Received: pr.RxFrames, Elapsed: pr.RxElapsed,
			RxMpps: pr.RxMpps, TxMpps: pr.TxMpps, CPUBusy: e2e.BusyPercent(c0, c1),
		}
		res.Reps = append(res.Reps, r)
		log("memring %4d B rep %d: rx %.3f Mpps (tx %.3f) in %.1f s", size, rep, r.RxMpps, r.TxMpps, time.Since(t0).Seconds())
	}
	if batch > 0 {
		res.Note += fmt.Sprintf(", burst %d frames per Reserve and per Recv", batch)
	}
	if huge {
		res.Note += ", region on 2 MiB hugepages"
	} else {
		res.Note += ", region on 4 KiB pages"
	}
	res.Note += "; CPU % over the whole process lifetime, start-up included"
	return res
}

func lastLine(s string) string {
	s = string(bytes.TrimSpace([]byte(s)))
	if i := bytes.LastIndexByte([]byte(s), '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
