package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apitap/apitap/tests/testkit"
)

// nsPrefix starts the name of every network namespace these tests create;
// the rest is the test process's pid, so stale ones can be told apart.
const nsPrefix = "apitap-e2e-"

const (
	clientV4  = "198.18.1.1"
	serverV4  = "198.18.1.2"
	clientV6  = "2001:2:0:1::1"
	serverV6  = "2001:2:0:1::2"
	mirrorSrc = "198.18.2.1" // server side of the mirror veth
	mirrorDst = "198.18.2.2" // sniffer side
	vni       = 4242
)

// removeStaleNamespaces deletes namespaces left by earlier runs of these
// tests whose process is gone (a killed test cannot clean up).
func removeStaleNamespaces() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, nsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		if pid, err := strconv.Atoi(pidStr); err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
			continue // its test is still running
		}
		killNamespacePids(name)
		_ = exec.Command("ip", "netns", "del", name).Run()
		fmt.Fprintf(os.Stderr, "e2e: removed stale network namespace %s\n", name)
	}
}

// killNamespacePids kills what still runs in a namespace of ours.
func killNamespacePids(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// topology is the three namespaces of one test and how they are wired.
type topology struct {
	client, server, sniffer string
}

// run runs a command and fails the test with its output on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newTopology creates the namespaces, veths, VXLAN device and tc mirror,
// and registers their removal with t.Cleanup.
func newTopology(t *testing.T, tag string) *topology {
	t.Helper()
	base := fmt.Sprintf("%s%d-%s-", nsPrefix, os.Getpid(), tag)
	tp := &topology{client: base + "cli", server: base + "srv", sniffer: base + "snf"}
	for _, ns := range []string{tp.client, tp.server, tp.sniffer} {
		if err := exec.Command("ip", "netns", "del", ns).Run(); err == nil {
			t.Logf("removed leftover namespace %s", ns)
		}
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			killNamespacePids(ns)
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v %s", ns, err, out)
			}
		})
	}
	c, s, m := tp.client, tp.server, tp.sniffer

	// client eth0 <-> server cli0; server mir0 <-> sniffer eth0 (jumbo, so
	// that encapsulated full-size frames are not fragmented).
	run(t, "ip", "link", "add", "eth0", "netns", c, "type", "veth", "peer", "name", "cli0", "netns", s)
	run(t, "ip", "link", "add", "mir0", "netns", s, "mtu", "9000", "type", "veth", "peer", "name", "eth0", "netns", m, "mtu", "9000")

	run(t, "ip", "-n", c, "addr", "add", clientV4+"/24", "dev", "eth0")
	run(t, "ip", "-n", c, "addr", "add", clientV6+"/64", "dev", "eth0", "nodad")
	run(t, "ip", "-n", s, "addr", "add", serverV4+"/24", "dev", "cli0")
	run(t, "ip", "-n", s, "addr", "add", serverV6+"/64", "dev", "cli0", "nodad")
	run(t, "ip", "-n", s, "addr", "add", mirrorSrc+"/24", "dev", "mir0")
	run(t, "ip", "-n", m, "addr", "add", mirrorDst+"/24", "dev", "eth0")
	for _, l := range [][2]string{{c, "lo"}, {c, "eth0"}, {s, "lo"}, {s, "cli0"}, {s, "mir0"}, {m, "lo"}, {m, "eth0"}} {
		run(t, "ip", "-n", l[0], "link", "set", l[1], "up")
	}
	// Offloads off: the mirror then sees wire-sized segments, as AWS's does.
	for _, l := range [][2]string{{c, "eth0"}, {s, "cli0"}, {s, "mir0"}, {m, "eth0"}} {
		run(t, "ip", "netns", "exec", l[0], "ethtool", "-K", l[1], "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off")
	}

	// The VXLAN device that carries the mirrored frames to the sniffer ns.
	run(t, "ip", "-n", s, "link", "add", "vx0", "type", "vxlan", "id", strconv.Itoa(vni),
		"remote", mirrorDst, "local", mirrorSrc, "dstport", "4789", "dev", "mir0")
	run(t, "ip", "netns", "exec", s, "sysctl", "-qw", "net.ipv6.conf.vx0.disable_ipv6=1")
	run(t, "ip", "-n", s, "link", "set", "vx0", "mtu", "8950", "up")

	// Mirror both directions of the server's client-facing veth.
	tc := func(args ...string) { run(t, "ip", append([]string{"netns", "exec", s, "tc"}, args...)...) }
	mirror := []string{"protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", "vx0"}
	if _, err := exec.Command("ip", "netns", "exec", s, "tc", "qdisc", "add", "dev", "cli0", "clsact").CombinedOutput(); err == nil {
		tc(append([]string{"filter", "add", "dev", "cli0", "ingress"}, mirror...)...)
		tc(append([]string{"filter", "add", "dev", "cli0", "egress"}, mirror...)...)
	} else {
		// Without clsact: the ingress qdisc, and a root prio qdisc for egress.
		tc("qdisc", "add", "dev", "cli0", "handle", "ffff:", "ingress")
		tc(append([]string{"filter", "add", "dev", "cli0", "parent", "ffff:"}, mirror...)...)
		tc("qdisc", "add", "dev", "cli0", "handle", "1:", "root", "prio")
		tc(append([]string{"filter", "add", "dev", "cli0", "parent", "1:"}, mirror...)...)
	}
	return tp
}

// proc is a process started in a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *testkit.LogFile
	done chan struct{}
	err  error
}

// startProc starts bin in namespace ns (via ip netns exec) with its stdout
// and stderr in dir/<name>.log. The process is killed on cleanup if still
// running, and its log is printed when the test failed.
func startProc(t *testing.T, ns, dir, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	log, err := testkit.NewLogFile(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s output (%s):\n%s", name, log.Path, log.Tail(12000))
		}
	})
	return p
}

// waitOutput waits until the process has printed s.
func (p *proc) waitOutput(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !p.log.Contains(s) {
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, s, p.log.Tail(8000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %v:\n%s", p.name, s, timeout, p.log.Tail(8000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends sig and waits up to timeout for the exit; it returns the
// exit code (-1 when killed by a signal or on time-out).
func (p *proc) stop(t *testing.T, sig syscall.Signal, timeout time.Duration) (int, error) {
	t.Helper()
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(timeout):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			return -1, fmt.Errorf("%s did not exit within %v of %v; killed", p.name, timeout, sig)
		}
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), p.err
	}
	if p.err != nil {
		return -1, p.err
	}
	return 0, nil
}

// udpStats returns the UDP counters of a namespace (Udp: lines of
// /proc/net/snmp), to tell kernel drops from sniffer drops.
func udpStats(ns string) string {
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").Output()
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Udp:") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
