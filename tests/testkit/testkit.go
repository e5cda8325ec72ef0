// Package testkit holds what the end-to-end, oracle and simulator tests
// share: locating the module, building binaries once per test, checking for
// root and for the external tools that scripts/test-deps.sh and
// scripts/infra-deps.sh install, and the record the
// sniffer publishes (docs/contracts.md §1) with its format checks.
package testkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// RepoRoot returns the directory holding the module's go.mod, found by
// walking up from the working directory (go test runs in the package dir).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := findRoot()
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(b, []byte("module github.com/apitap/apitap")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod of github.com/apitap/apitap not found above the working directory")
		}
		dir = parent
	}
}

// RequireRoot skips the test when it does not run as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: this test needs root (network namespaces, veths, tc); run it as root, e.g. `sudo make test`")
	}
}

// RequireTools fails the test (it does not skip it) when a command is
// missing: scripts/test-deps.sh installs all of them.
func RequireTools(tb testing.TB, cmds ...string) {
	tb.Helper()
	var missing []string
	for _, c := range cmds {
		if _, err := LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		tb.Fatalf("missing tools %v: run scripts/test-deps.sh (as root) first", missing)
	}
}

// LookPath is exec.LookPath that also looks in the sbin directories, which
// are not on every PATH.
func LookPath(cmd string) (string, error) {
	if p, err := exec.LookPath(cmd); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(d, cmd)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found", cmd)
}

// PyBin is a tool of the Python virtual environment scripts/infra-deps.sh
// fills (cfn-lint, checkov, moto_server): in $APITAP_PY, else in
// ~/.cache/apitap/py/bin. A missing tool fails the test.
func PyBin(tb testing.TB, tool string) string {
	tb.Helper()
	dir := os.Getenv("APITAP_PY")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "apitap", "py", "bin")
	}
	p := filepath.Join(dir, tool)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("%s not found at %s: run scripts/infra-deps.sh (or set APITAP_PY)", tool, p)
	}
	return p
}

// Build compiles the given packages (import paths relative to the module
// root, e.g. "./sniffer") into dir and returns the binaries' paths in the
// same order. APITAP_SNIFFER, when set, names a prebuilt sniffer binary
// used instead of building ./sniffer.
func Build(dir string, pkgs ...string) ([]string, error) {
	root, err := findRoot()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(pkgs))
	var build []string
	for i, p := range pkgs {
		if p == "./sniffer" {
			if prebuilt := os.Getenv("APITAP_SNIFFER"); prebuilt != "" {
				out[i] = prebuilt
				continue
			}
		}
		out[i] = filepath.Join(dir, filepath.Base(p))
		build = append(build, p)
	}
	if len(build) == 0 {
		return out, nil
	}
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, build...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out, nil
}

// Record is the flat record of docs/contracts.md §1. Every field is a JSON string.
type Record struct {
	Method          string `json:"method"`
	Path            string `json:"path"`
	Type            string `json:"type"`
	RequestHeaders  string `json:"requestHeaders"`
	ResponseHeaders string `json:"responseHeaders"`
	RequestPayload  string `json:"requestPayload"`
	ResponsePayload string `json:"responsePayload"`
	IP              string `json:"ip"`
	DestIP          string `json:"destIp"`
	Time            string `json:"time"`
	StatusCode      string `json:"statusCode"`
	Status          string `json:"status"`
	AccountID       string `json:"akto_account_id"`
	VxlanID         string `json:"akto_vxlan_id"`
	IsPending       string `json:"is_pending"`
	Source          string `json:"source"`
}

// RecordFields lists the record's fields, all required.
var RecordFields = []string{
	"method", "path", "type", "requestHeaders", "responseHeaders",
	"requestPayload", "responsePayload", "ip", "destIp", "time",
	"statusCode", "status", "akto_account_id", "akto_vxlan_id",
	"is_pending", "source",
}

// ParseRecord decodes one record and checks its shape: a flat JSON object
// with every field of docs/contracts.md §1 present and a string, both header
// fields strings holding a JSON object of string to string, time and
// statusCode decimal integers (statusCode may be empty for a pending
// record), status starting with the status code.
func ParseRecord(b []byte) (Record, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return Record{}, fmt.Errorf("not a JSON object: %v", err)
	}
	var problems []string
	for _, f := range RecordFields {
		v, ok := raw[f]
		if !ok {
			problems = append(problems, "missing field "+f)
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			problems = append(problems, fmt.Sprintf("field %s is not a JSON string: %s", f, v))
		}
	}
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) != nil {
			problems = append(problems, fmt.Sprintf("extra field %s is not a JSON string: %.80s", k, v))
		}
	}
	if len(problems) > 0 {
		return Record{}, errors.New(strings.Join(problems, "; "))
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, err
	}
	for _, h := range []struct{ name, v string }{{"requestHeaders", r.RequestHeaders}, {"responseHeaders", r.ResponseHeaders}} {
		if h.v == "" && h.name == "responseHeaders" && r.IsPending == "true" {
			continue
		}
		if _, err := ParseHeaders(h.v); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", h.name, err))
		}
	}
	if t, err := strconv.ParseInt(r.Time, 10, 32); err != nil || t <= 0 {
		problems = append(problems, fmt.Sprintf("time %q is not a positive int32", r.Time))
	}
	if r.IsPending != "true" && r.IsPending != "false" {
		problems = append(problems, fmt.Sprintf("is_pending %q", r.IsPending))
	}
	if r.IsPending == "false" {
		if c, err := strconv.Atoi(r.StatusCode); err != nil || c < 100 || c > 999 {
			problems = append(problems, fmt.Sprintf("statusCode %q", r.StatusCode))
		}
		if !strings.HasPrefix(r.Status, r.StatusCode) {
			problems = append(problems, fmt.Sprintf("status %q does not start with statusCode %q", r.Status, r.StatusCode))
		}
	}
	if _, err := strconv.ParseUint(r.VxlanID, 10, 24); err != nil {
		problems = append(problems, fmt.Sprintf("akto_vxlan_id %q", r.VxlanID))
	}
	if len(problems) > 0 {
		return r, errors.New(strings.Join(problems, "; "))
	}
	return r, nil
}

// ParseHeaders decodes a header field of a record: a JSON object of string
// to string, serialized to a string.
func ParseHeaders(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("not a JSON object of strings: %v (%.100q)", err, s)
	}
	return m, nil
}

// Header looks a header up by name, case-insensitively.
func Header(h map[string]string, name string) (string, bool) {
	if v, ok := h[name]; ok {
		return v, true
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// ID returns the value of the id query parameter of a request path, or ""
// when there is none.
func ID(path string) string {
	_, q, ok := strings.Cut(path, "?")
	if !ok {
		return ""
	}
	for _, kv := range strings.Split(q, "&") {
		if v, ok := strings.CutPrefix(kv, "id="); ok {
			return v
		}
	}
	return ""
}

// LogFile is an io.Writer that keeps a process's output in a file and can
// be searched while the process runs. Safe for concurrent use.
type LogFile struct {
	Path string
	mu   sync.Mutex
	f    *os.File
	buf  bytes.Buffer
}

// NewLogFile creates the file at path.
func NewLogFile(path string) (*LogFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &LogFile{Path: path, f: f}, nil
}

func (l *LogFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.f.Write(p)
}

// Contains reports whether the output so far contains s.
func (l *LogFile) Contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.buf.Bytes(), []byte(s))
}

// String returns the output so far.
func (l *LogFile) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Tail returns the last n bytes of the output so far.
func (l *LogFile) Tail(n int) string {
	s := l.String()
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// Close closes the file.
func (l *LogFile) Close() error { return l.f.Close() }
