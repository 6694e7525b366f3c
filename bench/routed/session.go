package main

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

// ownSessionEnv marks the re-executed harness.
const ownSessionEnv = "VSR_ROUTED_OWN_SESSION"

// reexecInOwnSession runs this command again as the leader of a new
// session, and returns its exit code. With sched_autogroup (Debian's
// default) niceness only ranks threads within one session's group, and
// every session's group gets an equal share of a core: other engineers'
// builds in their own sessions would take half of each core whatever our
// nice. In a session of our own, whose autogroup gets our niceness
// (setAutogroupNice), run only the harness, the generator and vswitchd.
// This parent stays in the caller's session and forwards SIGINT/SIGTERM,
// so ^C still ends the run through its cleanup.
func reexecInOwnSession(stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "routed: find own binary:", err)
		return 1
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Env = append(os.Environ(), ownSessionEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "routed: re-exec in own session:", err)
		return 1
	}
	go func() {
		for s := range sig {
			cmd.Process.Signal(s)
		}
	}()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 1
	}
	return 0
}

// setAutogroupNice gives this session's scheduler group niceness nice.
func setAutogroupNice(nice int) error {
	return os.WriteFile("/proc/self/autogroup", []byte(strconv.Itoa(nice)), 0)
}
