package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestLiveSmoke runs the live benchmark at one low rate for 2 s: the real
// sniffer and sender in their namespaces, every pair read back.
func TestLiveSmoke(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	if err := gen(dir, []scenario{{Name: "small", Conns: 20, Exchanges: 5}}); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bench")
	sniffer := filepath.Join(dir, "sniffer")
	for out, pkg := range map[string]string{bin: ".", sniffer: "../../sniffer"} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	var stdout bytes.Buffer
	cmd := exec.Command(bin, "live", "-sniffer", sniffer, "-pcap", filepath.Join(dir, "small.pcap"), "-rates", "20k", "-duration", "2s")
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	out := stdout.String()
	t.Log(out)
	// The machinery, not the machine: whole loops were sent and their pairs
	// came back checked. A noisy machine may lose a few even at this rate,
	// so the figures are not asserted beyond that.
	row := regexp.MustCompile(`(?m)^20k\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+\s+\d+\s+\d+(\s+\d+){4}$`)
	m := row.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no row for 20k:\n%s", out)
	}
	pps, _ := strconv.Atoi(m[1])
	loops, _ := strconv.Atoi(m[2])
	expected, _ := strconv.Atoi(m[3])
	kept, _ := strconv.Atoi(m[4])
	if loops < 2 || expected != loops*100 || kept < expected*9/10 || kept > expected || pps < 10000 || pps > 30000 {
		t.Errorf("sent %d packets/s in %d loops, %d pairs expected (want loops x 100), %d kept:\n%s", pps, loops, expected, kept, out)
	}
	if !regexp.MustCompile(`highest rate with >= 99\.9% of pairs kept: `).MatchString(out) {
		t.Errorf("no highest rate line:\n%s", out)
	}
	ours := fmt.Sprintf("%s%d-", liveNSPrefix, cmd.Process.Pid)
	if out, _ := exec.Command("ip", "netns", "list").Output(); bytes.Contains(out, []byte(ours)) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
}
