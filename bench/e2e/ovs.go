package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The ovs case is the Open vSwitch reference of the shared anchors
// (sw-ovs.sh afxdp): the userspace (netdev) datapath with two afxdp ports,
// one PMD thread on the switch core, forwarding by the default NORMAL flow
// (MAC learning). ovsdb-server and ovs-vswitchd run from a private temp
// directory, so the system's /etc/openvswitch and /var/run/openvswitch are
// never read or written, and are stopped by the PIDs the harness started.
const (
	// OVSMissing is the per-case error when an OVS program or the schema
	// is not found.
	OVSMissing = "Open vSwitch not installed (apt-get install openvswitch-switch)"
	ovsSchema  = "/usr/share/openvswitch/vswitch.ovsschema"
	// ovsNetdevLink is the tap device of the netdev datapath itself; OVS
	// makes it persistent, so a killed ovs-vswitchd leaves it (and the
	// bridge's own tap) behind.
	ovsNetdevLink = "ovs-netdev"
	// ovsXDPMode is the afxdp mode the case measures: the ports ask for
	// best-effort (OVS's default, as the anchors), which on a veth ends in
	// native XDP with copy-mode AF_XDP sockets.
	ovsXDPMode = "native"
	// ovsMACAgingTime outlives any run: the sink never answers, so nothing
	// refreshes d1's MAC, and once it aged out (OVS's default is 300 s)
	// OVS would flood every frame, the bridge's own port included.
	ovsMACAgingTime = 3600
	// ovsCtlTimeout bounds one ovs-vsctl or ovs-appctl call.
	ovsCtlTimeout = 20 * time.Second
	// ovsExitTimeout is how long ovs-vswitchd gets to exit after
	// "exit --cleanup" before it is sent SIGTERM.
	ovsExitTimeout = 10 * time.Second
	// ovsLearnTimeout is how long the MACs of a ping that crossed the
	// switch may take to show up in its MAC table.
	ovsLearnTimeout = 2 * time.Second
)

// ovsTools are the programs the case runs, by name on $PATH.
var ovsTools = []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl"}

// ovsEnv points every OVS program at the private directory dir instead of
// the system's run, database, log and config directories.
func ovsEnv(dir string) []string {
	return []string{"OVS_RUNDIR=" + dir, "OVS_DBDIR=" + dir, "OVS_LOGDIR=" + dir, "OVS_SYSCONFDIR=" + dir}
}

// ovsDBSocket is the socket ovsdb-server listens on in dir.
func ovsDBSocket(dir string) string { return filepath.Join(dir, "db.sock") }

// ovsCtlPath is ovs-vswitchd's control socket (ovs-appctl -t) in dir.
func ovsCtlPath(dir string, pid int) string {
	return filepath.Join(dir, fmt.Sprintf("ovs-vswitchd.%d.ctl", pid))
}

// ovsdbServerArgs are ovsdb-server's arguments. It runs in the foreground
// as the harness's child (no --detach), logs to stderr, not syslog.
func ovsdbServerArgs(dir string) []string {
	return []string{
		filepath.Join(dir, "conf.db"),
		"--remote=punix:" + ovsDBSocket(dir),
		"--pidfile=" + filepath.Join(dir, "ovsdb-server.pid"),
		"-vsyslog:off",
	}
}

// ovsVswitchdArgs are ovs-vswitchd's arguments, foreground as ovsdb-server.
func ovsVswitchdArgs(dir string) []string {
	return []string{
		"unix:" + ovsDBSocket(dir),
		"--pidfile=" + filepath.Join(dir, "ovs-vswitchd.pid"),
		"-vsyslog:off",
	}
}

// ovsVsctlBase starts every ovs-vsctl argument list: the private database
// and a bound on how long a change may wait for ovs-vswitchd to apply it.
func ovsVsctlBase(dir string) []string {
	return []string{"--db=unix:" + ovsDBSocket(dir), fmt.Sprintf("--timeout=%d", int(ovsCtlTimeout.Seconds()))}
}

// ovsInitCommands initialise the database before ovs-vswitchd starts
// (--no-wait: no daemon to wait for yet): one PMD thread, on cpu.
func ovsInitCommands(cpu int) [][]string {
	return [][]string{
		{"--no-wait", "init"},
		{"--no-wait", "set", "Open_vSwitch", ".", "other_config:pmd-cpu-mask=" + ovsCPUMask(cpu)},
	}
}

// ovsBridgeCommands make the netdev bridge with both ports as afxdp ports
// on one queue each. Each call returns once ovs-vswitchd applied it.
func ovsBridgeCommands(bridge, p0, p1 string) [][]string {
	cmds := [][]string{{
		"add-br", bridge, "--", "set", "Bridge", bridge, "datapath_type=netdev",
		fmt.Sprintf("other_config:mac-aging-time=%d", ovsMACAgingTime),
	}}
	for _, p := range []string{p0, p1} {
		cmds = append(cmds, []string{"add-port", bridge, p, "--", "set", "Interface", p, "type=afxdp", "options:n_rxq=1"})
	}
	return cmds
}

// ovsInterfaceQuery lists name, OpenFlow port, link state and error of
// every interface as CSV (see parseOVSInterfaces).
var ovsInterfaceQuery = []string{
	"--format=csv", "--data=bare", "--no-headings", "--columns=name,ofport,link_state,error", "list", "Interface",
}

// ovsCPUMask is the hex CPU mask of the single cpu.
func ovsCPUMask(cpu int) string {
	return "0x" + new(big.Int).Lsh(big.NewInt(1), uint(cpu)).Text(16)
}

// ovsInterface is one row of ovsInterfaceQuery.
type ovsInterface struct {
	Name      string
	OFPort    int // -1 when OVS could not open the interface, 0 before it tried
	LinkState string
	Error     string
}

// parseOVSInterfaces parses ovsInterfaceQuery's output by interface name.
// An empty ofport (not yet assigned) reads as 0.
func parseOVSInterfaces(out []byte) (map[string]ovsInterface, error) {
	r := csv.NewReader(bytes.NewReader(out))
	r.FieldsPerRecord = 4
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse interface list: %w", err)
	}
	m := make(map[string]ovsInterface, len(recs))
	for _, rec := range recs {
		i := ovsInterface{Name: rec[0], LinkState: rec[2], Error: rec[3]}
		if rec[1] != "" {
			if i.OFPort, err = strconv.Atoi(rec[1]); err != nil {
				return nil, fmt.Errorf("parse interface list: ofport %q of %s: %w", rec[1], rec[0], err)
			}
		}
		m[i.Name] = i
	}
	return m, nil
}

// ovsModeLine is netdev-afxdp's report of the XDP mode a port got,
// "vsb1p0: native XDP mode will be in use."; the mode is one of
// native-with-zerocopy, native or generic.
var ovsModeLine = regexp.MustCompile(`\|([^|:\s]+): (\S+) XDP mode will be in use`)

// ovsXDPModes returns the XDP mode the log reports last for each port.
func ovsXDPModes(log []byte) map[string]string {
	m := map[string]string{}
	for _, sub := range ovsModeLine.FindAllSubmatch(log, -1) {
		m[string(sub[1])] = string(sub[2])
	}
	return m
}

// ovsPortsReady reports whether every port is up in OVS with the XDP mode
// the case measures. An error means it never will be: OVS could not open a
// port, found no XDP mode for it, or chose another mode.
func ovsPortsReady(ports []string, ifaces map[string]ovsInterface, log []byte) (bool, error) {
	modes := ovsXDPModes(log)
	ready := true
	for _, p := range ports {
		i := ifaces[p]
		if i.Error != "" {
			return false, fmt.Errorf("OVS port %s: %s", p, i.Error)
		}
		if bytes.Contains(log, []byte(p+": Failed to detect suitable XDP mode")) {
			return false, fmt.Errorf("OVS port %s: no XDP mode works on it", p)
		}
		mode, ok := modes[p]
		if ok && mode != ovsXDPMode {
			return false, fmt.Errorf("OVS port %s uses %s XDP mode; the case measures %s (copy) mode", p, mode, ovsXDPMode)
		}
		if !ok || i.OFPort <= 0 || i.LinkState != "up" {
			ready = false
		}
	}
	return ready, nil
}

// parseOVSFDB parses "ovs-appctl fdb/show BRIDGE" (a header line, then
// "port VLAN MAC age" rows) into the port of each learned MAC.
func parseOVSFDB(out []byte) map[string]string {
	m := map[string]string{}
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 4 {
			continue
		}
		m[strings.ToLower(f[2])] = f[0]
	}
	return m
}

// ovsVersion returns "3.1" from "ovs-vswitchd (Open vSwitch) 3.1.0", or "".
func ovsVersion(out []byte) string {
	m := regexp.MustCompile(`\(Open vSwitch\) (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// ovsNote is the report note of the case; version may be unknown ("").
func ovsNote(version string, cpu int) string {
	name := "OVS"
	if version != "" {
		name += " " + version
	}
	return fmt.Sprintf("%s netdev datapath, afxdp ports (copy mode), PMD on cpu %d, whole process pinned", name, cpu)
}

// ovsNoise matches log lines that say nothing about a failure: libbpf
// skipping ELF sections, and the RLIMIT_MEMLOCK error, harmless because
// BPF memory is charged to the memory cgroup.
var ovsNoise = regexp.MustCompile(`skipping unrecognized data section|setrlimit\(RLIMIT_MEMLOCK\) failed`)

// ovsTail quotes the end of an OVS log without the noise lines.
func ovsTail(data []byte) string {
	var keep []string
	for _, line := range strings.Split(string(data), "\n") {
		if !ovsNoise.MatchString(line) {
			keep = append(keep, line)
		}
	}
	return lastLines(strings.Join(keep, "\n"))
}

// ovsSwitch runs Open vSwitch as a reference switch. ovs-vswitchd is pinned
// whole to the switch core, as in the anchors (taskset there); its PMD
// thread goes there by pmd-cpu-mask. Start returns once both ports are up
// in native XDP mode and the MAC table holds s0's and d1's MACs.
type ovsSwitch struct {
	cpu          int
	readyTimeout time.Duration
	pingTimeout  time.Duration
	log          io.Writer
	lookPath     func(string) (string, error) // exec.LookPath; tests replace it

	version     string
	versionRead bool

	bins     map[string]string // ovsTools by name
	t        *Topology
	dir      string
	db       child // ovsdb-server
	vswitchd child // ovs-vswitchd
	ofports  map[string]int
	bpffs    bpffsMount
	// netdevLinkBefore: an ovs-netdev link existed before Start, so it is
	// not ours to delete.
	netdevLinkBefore bool
	failed           bool
}

func (s *ovsSwitch) Note() string {
	if !s.versionRead {
		s.versionRead = true
		if bin, err := s.look("ovs-vswitchd"); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out, _ := exec.CommandContext(ctx, bin, "--version").Output()
			cancel()
			s.version = ovsVersion(out)
		}
	}
	return ovsNote(s.version, s.cpu)
}

func (s *ovsSwitch) look(name string) (string, error) {
	if s.lookPath != nil {
		return s.lookPath(name)
	}
	return exec.LookPath(name)
}

func (s *ovsSwitch) Start(ctx context.Context, t *Topology) error {
	s.bins = map[string]string{}
	for _, name := range ovsTools {
		bin, err := s.look(name)
		if err != nil {
			return errors.New(OVSMissing)
		}
		s.bins[name] = bin
	}
	if _, err := os.Stat(ovsSchema); err != nil {
		return fmt.Errorf("%s: %w", OVSMissing, err)
	}
	s.t = t
	_, err := t.RootHandle().LinkByName(ovsNetdevLink)
	s.netdevLinkBefore = err == nil
	// libxdp, under OVS's afxdp ports, wants a bpffs for its dispatcher.
	if err := s.bpffs.Mount(); err != nil {
		return err
	}
	// Named after the run (t.ID), so a leftover names its owner.
	if s.dir, err = os.MkdirTemp("", NamePrefix+t.ID+"-ovs-"); err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if _, err := s.run(ctx, "ovsdb-tool", "create", filepath.Join(s.dir, "conf.db"), ovsSchema); err != nil {
		return err
	}
	if err := s.startChild(&s.db, "ovsdb-server", ovsdbServerArgs(s.dir), -1); err != nil {
		return err
	}
	if err := s.waitDB(ctx); err != nil {
		return err
	}
	for _, args := range ovsInitCommands(s.cpu) {
		if _, err := s.vsctlWhile(ctx, &s.db, args...); err != nil {
			return err
		}
	}
	if err := s.startChild(&s.vswitchd, "ovs-vswitchd", ovsVswitchdArgs(s.dir), s.cpu); err != nil {
		return err
	}
	for _, args := range ovsBridgeCommands(t.Bridge, t.P0, t.P1) {
		if _, err := s.vsctlWhile(ctx, &s.vswitchd, args...); err != nil {
			s.failed = true
			return err
		}
	}
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	return s.learnMACs(ctx)
}

// startChild starts one OVS daemon in the foreground as a child of the
// harness, output to DIR/NAME.log, pinned to cpu unless cpu < 0.
func (s *ovsSwitch) startChild(c *child, name string, args []string, cpu int) error {
	c.name, c.tail = name, ovsTail
	c.logPath = filepath.Join(s.dir, name+".log")
	cmd := exec.Command(s.bins[name], args...)
	cmd.Env = append(os.Environ(), ovsEnv(s.dir)...)
	if err := c.start(cmd, cpu); err != nil {
		return err
	}
	fmt.Fprintf(s.log, "  %s pid %d, log %s\n", name, c.cmd.Process.Pid, c.logPath)
	return nil
}

// run runs one OVS tool against the private directory and returns its
// output.
func (s *ovsSwitch) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, ovsCtlTimeout+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bins[name], args...)
	cmd.Env = append(os.Environ(), ovsEnv(s.dir)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func (s *ovsSwitch) vsctl(ctx context.Context, args ...string) ([]byte, error) {
	return s.run(ctx, "ovs-vsctl", append(ovsVsctlBase(s.dir), args...)...)
}

// vsctlWhile runs ovs-vsctl while the daemon c lives: a change waits for
// ovs-vswitchd to apply it, in vain once a daemon exited. Its errors quote
// c's log.
func (s *ovsSwitch) vsctlWhile(ctx context.Context, c *child, args ...string) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := c.done
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	out, err := s.vsctl(ctx, args...)
	if err == nil {
		return out, nil
	}
	select {
	case <-c.done:
		s.failed = true
		return out, fmt.Errorf("%s exited during ovs-vsctl %s (%v); log: %s", c.name, strings.Join(args, " "), c.waitErr, c.logTail())
	default:
		return out, fmt.Errorf("%w; log: %s", err, c.logTail())
	}
}

func (s *ovsSwitch) appctl(ctx context.Context, args ...string) ([]byte, error) {
	target := ovsCtlPath(s.dir, s.vswitchd.cmd.Process.Pid)
	return s.run(ctx, "ovs-appctl", append([]string{"-t", target}, args...)...)
}

// waitDB waits for ovsdb-server's socket: ovs-vsctl does not retry a
// connection that is refused.
func (s *ovsSwitch) waitDB(ctx context.Context) error {
	sock := ovsDBSocket(s.dir)
	return s.poll(ctx, &s.db, "ovsdb-server", func(context.Context) (bool, error) {
		st, err := os.Stat(sock)
		return err == nil && st.Mode()&os.ModeSocket != 0, nil
	})
}

// waitReady polls the interface table and ovs-vswitchd's log until both
// ports are up in native XDP mode.
func (s *ovsSwitch) waitReady(ctx context.Context) error {
	start := time.Now()
	ports := []string{s.t.P0, s.t.P1}
	var last string // for a timeout: what the interface table said last
	err := s.poll(ctx, &s.vswitchd, "OVS ports", func(ctx context.Context) (bool, error) {
		out, err := s.vsctl(ctx, ovsInterfaceQuery...)
		if err != nil {
			last = err.Error()
			return false, nil // a slow or busy daemon: try again
		}
		last = strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", " | ")
		ifaces, err := parseOVSInterfaces(out)
		if err != nil {
			return false, err
		}
		log, _ := os.ReadFile(s.vswitchd.logPath)
		ready, err := ovsPortsReady(ports, ifaces, log)
		if ready {
			s.ofports = map[string]int{s.t.P0: ifaces[s.t.P0].OFPort, s.t.P1: ifaces[s.t.P1].OFPort}
		}
		return ready, err
	})
	if err != nil {
		return fmt.Errorf("%w; interfaces (name,ofport,link_state,error): %s", err, last)
	}
	fmt.Fprintf(s.log, "  OVS ports up in %s XDP mode after %.1f s\n", ovsXDPMode, time.Since(start).Seconds())
	return nil
}

// poll calls ready every 50 ms until it reports true or an error, the
// daemon c exits, or the ready timeout passes. what names the awaited
// thing in errors, which quote the daemon's log.
func (s *ovsSwitch) poll(ctx context.Context, c *child, what string, ready func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, s.readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := ready(ctx)
		if err != nil {
			s.failed = true
			return fmt.Errorf("%w; log: %s", err, c.logTail())
		}
		if ok {
			return nil
		}
		select {
		case <-c.done:
			s.failed = true
			return fmt.Errorf("%s exited before %s ready (%v); log: %s", c.name, what, c.waitErr, c.logTail())
		case <-ctx.Done():
			s.failed = true
			return fmt.Errorf("%s not ready after %s; log: %s", what, s.readyTimeout, c.logTail())
		case <-tick.C:
		}
	}
}

// learnMACs pings d1 from s0 through the switch, which teaches NORMAL
// forwarding both MACs, and checks that its MAC table has s0's MAC on p0
// and d1's on p1: unknown unicast would be flooded (to the bridge's own
// port too), not switched.
func (s *ovsSwitch) learnMACs(ctx context.Context) error {
	if err := pingCheck(ctx, s.t, s.pingTimeout); err != nil {
		s.failed = true
		return fmt.Errorf("ping through OVS: %w; log: %s", err, s.vswitchd.logTail())
	}
	want := map[string]string{
		SrcMAC.String(): strconv.Itoa(s.ofports[s.t.P0]),
		DstMAC.String(): strconv.Itoa(s.ofports[s.t.P1]),
	}
	ctx, cancel := context.WithTimeout(ctx, ovsLearnTimeout)
	defer cancel()
	var out []byte
	for {
		var err error
		out, err = s.appctl(ctx, "fdb/show", s.t.Bridge)
		if err == nil && ovsLearned(parseOVSFDB(out), want) {
			return nil
		}
		select {
		case <-ctx.Done():
			s.failed = true
			return fmt.Errorf("OVS MAC table lacks %v (mac: port) after a ping: %s", want, strings.TrimSpace(string(out)))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ovsLearned reports whether fdb maps every MAC of want to its port.
func ovsLearned(fdb, want map[string]string) bool {
	for mac, port := range want {
		if fdb[mac] != port {
			return false
		}
	}
	return true
}

func (s *ovsSwitch) Alive() error {
	if err := s.vswitchd.alive(); err != nil {
		return err
	}
	return s.db.alive()
}

// Stop asks ovs-vswitchd to exit and remove its datapath ("exit
// --cleanup"), waits for it, and SIGTERMs then SIGKILLs it by PID if it
// does not go; then stops ovsdb-server by PID and removes what a killed
// ovs-vswitchd leaves: the bridge's and the datapath's tap devices, the XDP
// programs on the ports, and the bpffs if Start mounted it. (OVS also
// leaves the ports promiscuous; on a veth that changes nothing.)
func (s *ovsSwitch) Stop() error {
	var errs []error
	errs = append(errs, s.stopVswitchd())
	errs = append(errs, s.db.terminate(sigtermClean))
	if s.t != nil {
		errs = append(errs, s.removeLeftLinks(), detachLeftXDP(s.t, "OVS"))
		s.t = nil
	}
	errs = append(errs, s.bpffs.Unmount())
	err := errors.Join(errs...)
	if s.dir != "" {
		if err != nil || s.failed || s.db.failed || s.vswitchd.failed {
			fmt.Fprintf(s.log, "  OVS database and logs kept in %s\n", s.dir)
		} else {
			os.RemoveAll(s.dir)
		}
		s.dir = ""
	}
	return err
}

// stopVswitchd ends ovs-vswitchd: "exit --cleanup" removes its ports,
// XDP programs and tap devices; SIGTERM (after ovsExitTimeout) leaves the
// tap devices; SIGKILL (10 s later) leaves everything.
func (s *ovsSwitch) stopVswitchd() error {
	c := &s.vswitchd
	if c.cmd == nil || c.done == nil {
		return nil
	}
	select {
	case <-c.done:
		return c.terminate(sigtermClean) // reports the early exit
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), ovsExitTimeout)
	defer cancel()
	_, exitErr := s.appctl(ctx, "exit", "--cleanup")
	select {
	case <-c.done:
		err := c.waitErr
		c.cmd, c.done = nil, nil
		if err != nil {
			return fmt.Errorf("ovs-vswitchd exit --cleanup: %w; log: %s", err, c.logTail())
		}
		return nil
	case <-ctx.Done():
	}
	err := fmt.Errorf("ovs-vswitchd did not exit within %s of exit --cleanup (%v)", ovsExitTimeout, exitErr)
	return errors.Join(err, c.terminate(sigtermClean))
}

// removeLeftLinks deletes the tap devices a killed ovs-vswitchd left: the
// bridge's, and ovs-netdev unless it was there before Start. Each one
// found is reported, as detachLeftXDP does.
func (s *ovsSwitch) removeLeftLinks() error {
	h := s.t.RootHandle()
	if h == nil {
		return nil
	}
	names := []string{s.t.Bridge}
	if !s.netdevLinkBefore {
		names = append(names, ovsNetdevLink)
	}
	var errs []error
	for _, name := range names {
		l, err := h.LinkByName(name)
		if err != nil {
			continue
		}
		if err := h.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete link %s OVS left: %w", name, err))
		} else {
			errs = append(errs, fmt.Errorf("OVS left link %s (deleted)", name))
		}
	}
	return errors.Join(errs...)
}
