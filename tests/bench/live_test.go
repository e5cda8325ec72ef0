package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	// Every loop's pairs come back, none mismatched, no drop anywhere.
	row := regexp.MustCompile(`(?m)^20k\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+100\.000\s+0\s+0\s+0\s+0\s+0\s+0$`)
	m := row.FindStringSubmatch(out)
	if m == nil || m[2] != m[3] || m[2] == "0" {
		t.Errorf("want one row at 20k with every pair kept and no drops:\n%s", out)
	}
	if !regexp.MustCompile(`highest rate with >= 99\.9% of pairs kept: \d+ packets/s \(offered 20k\)`).MatchString(out) {
		t.Errorf("no highest rate line:\n%s", out)
	}
	ours := fmt.Sprintf("%s%d-", liveNSPrefix, cmd.Process.Pid)
	if out, _ := exec.Command("ip", "netns", "list").Output(); bytes.Contains(out, []byte(ours)) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
}
