package e2e

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
)

// ownSessionEnv marks a harness re-executed by OwnSession.
const ownSessionEnv = "VSWITCH_BENCH_OWN_SESSION"

// OwnSession moves a benchmark harness named name into a scheduler
// session of its own at niceness nice (0: leave it where it is).
//
// With sched_autogroup (Debian's default) niceness only ranks threads
// within one session's group, and every session's group gets an equal
// share of a core: other jobs in their own sessions would take half of
// each core whatever our nice. So the first call re-executes the command
// as the leader of a new session, waits for it and returns its exit code
// with parent true: the caller must return that code. The parent stays in
// the caller's session and forwards SIGINT/SIGTERM, so ^C still ends the
// run through the child's cleanup. In the child, OwnSession gives the
// session's autogroup our niceness and returns parent false.
func OwnSession(name string, nice int, stdout, stderr io.Writer) (code int, parent bool) {
	if nice == 0 {
		return 0, false
	}
	if os.Getenv(ownSessionEnv) != "" {
		if err := os.WriteFile("/proc/self/autogroup", []byte(strconv.Itoa(nice)), 0); err != nil {
			fmt.Fprintf(stderr, "%s: autogroup nice (measuring at the scheduler's mercy): %v\n", name, err)
		}
		return 0, false
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "%s: find own binary: %v\n", name, err)
		return 1, true
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Env = append(os.Environ(), ownSessionEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "%s: re-exec in own session: %v\n", name, err)
		return 1, true
	}
	go func() {
		for s := range sig {
			_ = cmd.Process.Signal(s)
		}
	}()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), true
		}
		return 1, true
	}
	return 0, true
}
