package stack_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apitap/apitap/infra/stack"
)

// The boot script itself, run by bash in a private mount namespace where
// /etc, /usr/local, /opt, /var and /tmp are overlays whose writes land in
// the test's directories. What a boot needs from outside (the instance
// metadata service, S3, Secrets Manager, CloudFormation, dnf, systemd) are
// small stand-ins on PATH that log their calls and answer as the test
// says; sleep returns at once and logs how long it was asked to wait.

type bootRun struct {
	exit    int
	calls   []string // "cmd args", in order
	upper   string   // root of the overlays' upper directories
	outputs string
}

// bootOptions say how the stand-ins behave.
type bootOptions struct {
	downloadFailures int // s3 cp fails this often before it works; -1 always
	readyAfter       int // /readyz answers after this many polls; -1 never
}

const stubs = `#!/bin/bash
# One stand-in for every outside command: $0 names it.
me=$(basename "$0")
echo "$me $*" >>"$BOOT_CALLS"
count() { local f="$BOOT_STATE/$1"; local n=$(( $(cat "$f" 2>/dev/null || echo 0) + 1 )); echo "$n" >"$f"; echo "$n"; }
case "$me" in
curl)
	case "$*" in
	*api/token*) echo token ;;
	*meta-data/instance-id*) echo i-0123456789abcdef0 ;;
	*readyz*)
		n=$(count readyz)
		if [ "$BOOT_READY_AFTER" -ge 0 ] && [ "$n" -gt "$BOOT_READY_AFTER" ]; then echo ready; exit 0; fi
		echo "not ready: kafka: dial tcp: connection refused" >&2; exit 22 ;;
	*) exit 7 ;;
	esac ;;
aws)
	case "$1 $2" in
	"s3 cp")
		n=$(count s3)
		if [ "$BOOT_DOWNLOAD_FAILURES" -lt 0 ] || [ "$n" -le "$BOOT_DOWNLOAD_FAILURES" ]; then echo "download failed: (RequestTimeout)" >&2; exit 1; fi
		for last; do :; done
		printf '#!/bin/sh\necho sniffer\n' >"$last" ;;
	"secretsmanager get-secret-value") echo '{"username":"apitap","password":"pa\"ss"}' ;;
	"cloudformation signal-resource") ;;
	"cloudwatch put-metric-data") ;;
	*) echo "unexpected aws $*" >&2; exit 2 ;;
	esac ;;
esac
exit 0
`

func runBoot(t *testing.T, s *synthesized, opt bootOptions) bootRun {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the boot script test mounts overlays in a private mount namespace: run as root (make infra-test in CI is)")
	}
	// Not under /tmp: the boot's /tmp is an overlay, and the stand-ins'
	// logs must reach the test.
	dir, err := os.MkdirTemp("/dev/shm", "apitap-boot-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin, state, upper, work := filepath.Join(dir, "bin"), filepath.Join(dir, "state"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	calls := filepath.Join(dir, "calls")
	for _, d := range []string{bin, state} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.WriteFile(filepath.Join(bin, "stub"), []byte(stubs), 0o755))
	for _, name := range []string{"curl", "aws", "systemctl", "sysctl", "dnf", "sleep", "logrotate"} {
		must(t, os.Symlink("stub", filepath.Join(bin, name)))
	}
	var mounts strings.Builder
	for _, d := range []string{"/etc", "/usr/local", "/opt", "/var", "/tmp"} {
		u, w := filepath.Join(upper, d), filepath.Join(work, d)
		must(t, os.MkdirAll(u, 0o755))
		must(t, os.MkdirAll(w, 0o755))
		fmt.Fprintf(&mounts, "mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s\n", d, u, w, d)
	}
	// The agent's control command is found by its path, not on PATH.
	ctl := filepath.Join(upper, "/opt/aws/amazon-cloudwatch-agent/bin")
	must(t, os.MkdirAll(ctl, 0o755))
	must(t, os.WriteFile(filepath.Join(ctl, "amazon-cloudwatch-agent-ctl"), []byte(stubs), 0o755))
	script := filepath.Join(dir, "user-data.sh")
	must(t, os.WriteFile(script, []byte(userData(t, s)), 0o755))

	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "bash", "-c", mounts.String()+"exec bash "+script)
	cmd.Env = []string{
		"PATH=" + bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"BOOT_CALLS=" + calls, "BOOT_STATE=" + state,
		fmt.Sprintf("BOOT_DOWNLOAD_FAILURES=%d", opt.downloadFailures),
		fmt.Sprintf("BOOT_READY_AFTER=%d", opt.readyAfter),
	}
	out, err := cmd.CombinedOutput()
	run := bootRun{upper: upper, outputs: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		run.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running the boot script: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(calls)
	run.calls = strings.Split(strings.TrimSpace(string(raw)), "\n")
	return run
}

func (r bootRun) count(prefix string) int {
	n := 0
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (r bootRun) signals() []string {
	var out []string
	for _, c := range r.calls {
		if strings.HasPrefix(c, "aws cloudformation signal-resource") {
			f := strings.Fields(c)
			out = append(out, f[len(f)-1])
		}
	}
	return out
}

func (r bootRun) file(t *testing.T, path string) (string, os.FileMode) {
	t.Helper()
	p := filepath.Join(r.upper, path)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("the boot wrote no %s: %v\n%s", path, err, r.outputs)
	}
	b, err := os.ReadFile(p)
	must(t, err)
	return string(b), st.Mode().Perm()
}

func TestBootRetriesAndSignalsReady(t *testing.T) {
	s := synth(t, "scram")
	r := runBoot(t, s, bootOptions{downloadFailures: 3, readyAfter: 2})
	if r.exit != 0 {
		t.Fatalf("boot exit %d:\n%s", r.exit, r.outputs)
	}
	if got := r.signals(); len(got) != 1 || got[0] != "SUCCESS" {
		t.Errorf("signals %v, want one SUCCESS\n%s", got, r.outputs)
	}
	if !strings.Contains(strings.Join(r.calls, "\n"), "--stack-name apitap-test --logical-resource-id "+stack.AutoScalingGroupID+" --unique-id i-0123456789abcdef0 --status SUCCESS") {
		t.Errorf("signal arguments: %v", r.calls)
	}
	if n := r.count("aws s3 cp"); n != 4 {
		t.Errorf("%d downloads, want 3 failures and a success", n)
	}
	// Backoff: 2, 4, 8 s between the downloads; 5 s between readiness polls.
	var sleeps []string
	for _, c := range r.calls {
		if strings.HasPrefix(c, "sleep ") {
			sleeps = append(sleeps, strings.TrimPrefix(c, "sleep "))
		}
	}
	if strings.Join(sleeps, " ") != "2 4 8 5 5" {
		t.Errorf("sleeps %v, want 2 4 8 (download backoff) then 5 5 (readiness polls)", sleeps)
	}
	if n := r.count("sysctl -q -p " + stack.SysctlFile); n != 1 {
		t.Errorf("the boot applied its sysctl file %d times: %v", n, r.calls)
	}
	if sysctl, _ := r.file(t, stack.SysctlFile); !strings.Contains(sysctl, "net.core.rmem_max=67108864") {
		t.Errorf("sysctl file:\n%s", sysctl)
	}
	if bin, mode := r.file(t, stack.SnifferPath); !strings.Contains(bin, "sniffer") || mode != 0o755 {
		t.Errorf("sniffer binary mode %v", mode)
	}
	env, mode := r.file(t, stack.SnifferEnvFile)
	if mode != 0o600 || !strings.HasPrefix(env, strings.Join(s.cfg.SnifferEnvLines(), "\n")+"\n") ||
		!strings.Contains(env, `SNIFFER_KAFKA_PASSWORD="pa\"ss"`) {
		t.Errorf("environment file (mode %v):\n%s", mode, env)
	}
	if _, err := os.Stat(filepath.Join(r.upper, stack.SnifferEnvFile+".secret")); err == nil {
		t.Error("the secret's temporary file is left behind")
	}
	if want := fmt.Sprintf("\nSNIFFER_MEMORY_LIMIT=%dMiB\n", memTotalKiB(t)/2048); !strings.Contains(env, want) {
		t.Errorf("environment file without the memory limit %q (half the instance's memory):\n%s", want, env)
	}
	if dropIn, _ := r.file(t, stack.UnitPath+".d/logs.conf"); !strings.Contains(dropIn, "StandardError=append:"+stack.SnifferLog) {
		t.Errorf("log drop-in:\n%s", dropIn)
	}
	if agent, _ := r.file(t, stack.AgentConfig); !strings.Contains(agent, stack.SnifferLog) || !strings.Contains(agent, "/apitap/apitap-test/sniffers") {
		t.Errorf("agent configuration:\n%s", agent)
	}
	for _, want := range []string{"dnf install -y -q amazon-cloudwatch-agent", "amazon-cloudwatch-agent-ctl -a fetch-config",
		"systemctl enable --now apitap-sniffer.service"} {
		if r.count(want) != 1 {
			t.Errorf("no %q in %v", want, r.calls)
		}
	}
}

func TestBootFailureSignalsFailure(t *testing.T) {
	s := synth(t, "full")
	for name, tc := range map[string]struct {
		opt  bootOptions
		says string
	}{
		"download never works": {bootOptions{downloadFailures: -1, readyAfter: 0}, "giving up after 8 tries: aws s3 cp"},
		"sniffer never ready":  {bootOptions{downloadFailures: 0, readyAfter: -1}, "not ready after 600 s"},
	} {
		r := runBoot(t, s, tc.opt)
		if r.exit == 0 {
			t.Errorf("%s: the boot succeeded:\n%s", name, r.outputs)
		}
		if got := r.signals(); len(got) != 1 || got[0] != "FAILURE" {
			t.Errorf("%s: signals %v, want one FAILURE\n%s", name, got, r.outputs)
		}
		if !strings.Contains(r.outputs, tc.says) {
			t.Errorf("%s: the boot log does not say %q:\n%s", name, tc.says, r.outputs)
		}
	}
	r := runBoot(t, s, bootOptions{downloadFailures: -1})
	if n := r.count("aws s3 cp"); n != stack.BootTries {
		t.Errorf("%d downloads, want %d", n, stack.BootTries)
	}
	if r.count("systemctl enable") != 0 {
		t.Error("a boot without the binary started the sniffer")
	}
}

// memTotalKiB is the machine's memory as the boot script reads it.
func memTotalKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}
