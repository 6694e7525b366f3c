package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

// dpdkRunDir holds a root DPDK process's runtime files per file prefix.
const dpdkRunDir = "/var/run/dpdk"

// memifStartTimeout bounds testpmd's start: EAL memory init with -m 1024
// and no huge pages took 9-20 s on the 2-vCPU benchmark VM.
const memifStartTimeout = 60 * time.Second

// memifArgs are one testpmd's arguments: main lcore idle (it prints stats
// every second), one forwarding lcore on fwdCPU, no PCI, no huge pages, a
// net_memif vdev on sock. The txonly side is the memif server.
func memifArgs(mainCPU, fwdCPU int, prefix, sock string, server bool, size int) []string {
	role, mode := "client", "rxonly"
	if server {
		role, mode = "server", "txonly"
	}
	return []string{
		"-l", fmt.Sprintf("%d,%d", mainCPU, fwdCPU), "--main-lcore", strconv.Itoa(mainCPU),
		"--no-pci", "--no-huge", "-m", "1024", "--file-prefix", prefix,
		"--vdev", fmt.Sprintf("net_memif0,role=%s,id=0,socket=%s,socket-abstract=no", role, sock),
		"--", "--forward-mode=" + mode, "--nb-cores=1", "--total-num-mbufs=16384",
		"--auto-start", "--stats-period", "1", "--txpkts=" + strconv.Itoa(size),
	}
}

// testpmdProc is one running testpmd with its log file.
type testpmdProc struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

func startTestpmd(bin string, args []string, logPath string) (*testpmdProc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &testpmdProc{cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// stop sends SIGTERM by PID, waits 3 s, then SIGKILLs. testpmd with memif
// sometimes segfaults at teardown (after the stats were read); that is not
// an error of the measurement.
func (p *testpmdProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *testpmdProc) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// ppsLines returns the values of the "<field>:" lines (e.g. Rx-pps) of a
// testpmd log, in order.
func ppsLines(path, field string) []float64 {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == field+":" {
			if v, err := strconv.ParseFloat(fs[1], 64); err == nil {
				out = append(out, v)
			}
		}
	}
	return out
}

// flowing reports whether the last Rx-pps line of a log is not zero.
func flowing(path string) bool {
	xs := ppsLines(path, "Rx-pps")
	return len(xs) > 0 && xs[len(xs)-1] > 0
}

func meanMpps(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs)) / 1e6
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// runMemif measures testpmd txonly -> rxonly over net_memif at one size.
func runMemif(ctx context.Context, s *settings, size int, log func(string, ...any)) e2e.CaseResult {
	prod, recv := s.CPUs[0], s.CPUs[1]
	res := e2e.CaseResult{
		Case: "memif", Label: "testpmd memif txonly->rxonly", Size: size, Flows: 1,
		Note: fmt.Sprintf("DPDK 22.11 net_memif copy mode, server txonly (fwd lcore cpu %d) -> client rxonly (fwd lcore cpu %d), --no-huge; rate = mean of rxonly's per-second Rx-pps", prod, recv),
	}
	if _, err := exec.LookPath(s.Testpmd); err != nil {
		res.Error = s.Testpmd + " not installed (apt-get install dpdk-dev librte-net-memif23)"
		return res
	}
	dir, err := os.MkdirTemp("", "memring-bench-memif")
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer os.RemoveAll(dir)
	for rep := 1; rep <= s.Reps && ctx.Err() == nil; rep++ {
		r, err := memifRep(ctx, s, size, rep, dir, prod, recv)
		if err != nil && ctx.Err() == nil {
			// One more try with fresh processes: memif's start is flaky
			// under load (see the anchors' notes); the retry is reported.
			log("memif   %4d B rep %d failed (%v), retrying once", size, rep, err)
			res.Warnings = append(res.Warnings, fmt.Sprintf("rep %d retried after: %v", rep, err))
			r, err = memifRep(ctx, s, size, rep, dir, prod, recv)
		}
		if err != nil {
			res.Error = fmt.Sprintf("rep %d: %v", rep, err)
			break
		}
		res.Reps = append(res.Reps, r)
		log("memif   %4d B rep %d: rx %.3f Mpps (tx %.3f)", size, rep, r.RxMpps, r.TxMpps)
	}
	return res
}

func memifRep(ctx context.Context, s *settings, size, rep int, dir string, prod, recv int) (e2e.Rep, error) {
	prefix := fmt.Sprintf("memring-bench-%d-%d", os.Getpid(), rep)
	sock := filepath.Join(dir, "memif.sock")
	txLog, rxLog := filepath.Join(dir, "tx.log"), filepath.Join(dir, "rx.log")
	defer func() {
		os.RemoveAll(filepath.Join(dpdkRunDir, prefix+"-tx"))
		os.RemoveAll(filepath.Join(dpdkRunDir, prefix+"-rx"))
		os.Remove(sock)
	}()
	// txonly: main lcore on the receiver's CPU (idle), forwarding on the
	// producer's; rxonly the other way round.
	tx, err := startTestpmd(s.Testpmd, memifArgs(recv, prod, prefix+"-tx", sock, true, size), txLog)
	if err != nil {
		return e2e.Rep{}, err
	}
	defer tx.stop()
	// The client must find the server's socket: testpmd's EAL start takes
	// seconds (more under load), and a client that came too early was seen
	// never to connect.
	deadline := time.Now().Add(memifStartTimeout)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if tx.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return e2e.Rep{}, fmt.Errorf("memif server socket did not appear: tx: %s", tail(txLog, 4))
		}
		time.Sleep(100 * time.Millisecond)
	}
	rx, err := startTestpmd(s.Testpmd, memifArgs(prod, recv, prefix+"-rx", sock, false, size), rxLog)
	if err != nil {
		return e2e.Rep{}, err
	}
	defer rx.stop()
	// Ready when frames flow: the memif connection comes up some time after
	// both processes print stats (zero rates until then).
	deadline = time.Now().Add(memifStartTimeout)
	for !flowing(rxLog) {
		if tx.exited() || rx.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return e2e.Rep{}, fmt.Errorf("no frames through memif within %v: tx: %s; rx: %s", memifStartTimeout, tail(txLog, 4), tail(rxLog, 4))
		}
		time.Sleep(200 * time.Millisecond)
	}
	sleep(ctx, s.Warmup)
	nrx, ntx := len(ppsLines(rxLog, "Rx-pps")), len(ppsLines(txLog, "Tx-pps"))
	c0, _ := e2e.ReadCPUTimes()
	t0 := time.Now()
	sleep(ctx, s.Duration)
	c1, _ := e2e.ReadCPUTimes()
	el := time.Since(t0)
	if tx.exited() || rx.exited() {
		return e2e.Rep{}, fmt.Errorf("testpmd exited during the run: tx: %s; rx: %s", tail(txLog, 4), tail(rxLog, 4))
	}
	rxs, txs := ppsLines(rxLog, "Rx-pps")[nrx:], ppsLines(txLog, "Tx-pps")[ntx:]
	if len(rxs) == 0 {
		return e2e.Rep{}, errors.New("no Rx-pps lines during the measurement")
	}
	r := e2e.Rep{RxMpps: meanMpps(rxs), TxMpps: meanMpps(txs), Elapsed: el.Seconds(), CPUBusy: e2e.BusyPercent(c0, c1)}
	r.Received = uint64(r.RxMpps * 1e6 * el.Seconds())
	r.Sent = uint64(r.TxMpps * 1e6 * el.Seconds())
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
