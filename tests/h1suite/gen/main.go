// Command gen turns gunicorn's HTTP request parser test suite (vendored under
// tests/h1suite/testdata/gunicorn) into tests/h1suite/testdata/cases.json,
// the cases TestSuite feeds through real connections into internal/http1.
//
// Each gunicorn case is a pair of files: NAME.http holds the client bytes,
// written with escapes (gunicorn's tests/treq.py: line breaks are layout,
// "\r\n", "\n", "\t", "\0" and "\xHH" are the bytes), and NAME.py holds the
// expected result as Python: a dict (or a list of dicts, for pipelined
// requests) with method, uri, version, headers and body, or the exception
// class the parser must raise. Some cases also change gunicorn's options
// (cfg.set) and are valid or invalid only under them. The expectations are
// Python code, so python3 evaluates them (with stand-ins for gunicorn's
// modules, which only name things here); everything else is done in Go.
//
// Usage (from tests/h1suite, as its go:generate line does):
//
//	go run ./gen -src testdata/gunicorn -out testdata/cases.json
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Case is one gunicorn case. Every string that stands for bytes (input,
// header values, bodies) is Latin-1: each character is one byte, so that
// the JSON stays readable and non-UTF-8 bytes survive.
type Case struct {
	Name     string    `json:"name"`              // "valid/001", "invalid/003"
	Input    string    `json:"input"`             // the client bytes
	Requests []Request `json:"requests"`          // valid: what gunicorn parses, in order
	Error    string    `json:"error,omitempty"`   // invalid: the exception gunicorn raises
	Options  []string  `json:"options,omitempty"` // gunicorn options the case sets ("proxy_protocol=True")
}

// Request is one request as gunicorn's suite expects it. Header names are
// upper-cased by gunicorn; values are as sent, without surrounding spaces.
type Request struct {
	Method   string      `json:"method"`
	Target   string      `json:"target"`
	Version  string      `json:"version"` // "HTTP/1.1"
	Headers  [][2]string `json:"headers"`
	Body     string      `json:"body"`
	Trailers [][2]string `json:"trailers,omitempty"`
}

func main() {
	src := flag.String("src", "testdata/gunicorn", "the vendored gunicorn test data (with requests/valid and requests/invalid)")
	out := flag.String("out", "testdata/cases.json", "where to write the cases")
	python := flag.String("python", "python3", "the Python 3 interpreter that evaluates the .py expectations")
	flag.Parse()
	if err := run(*src, *out, *python); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(src, out, python string) error {
	var httpFiles []string
	for _, kind := range []string{"valid", "invalid"} {
		m, err := filepath.Glob(filepath.Join(src, "requests", kind, "*.http"))
		if err != nil {
			return fmt.Errorf("list %s cases in %s: %w", kind, src, err)
		}
		httpFiles = append(httpFiles, m...)
	}
	if len(httpFiles) == 0 {
		return fmt.Errorf("no *.http files under %s/requests/{valid,invalid}", src)
	}
	slices.Sort(httpFiles)

	pyFiles := make([]string, len(httpFiles))
	for i, f := range httpFiles {
		pyFiles[i] = strings.TrimSuffix(f, ".http") + ".py"
	}
	expect, err := evalExpectations(python, pyFiles)
	if err != nil {
		return err
	}

	cases := make([]Case, 0, len(httpFiles))
	for i, f := range httpFiles {
		raw, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read case %s: %w", f, err)
		}
		input, err := unescape(raw)
		if err != nil {
			return fmt.Errorf("decode case %s: %w", f, err)
		}
		e, ok := expect[pyFiles[i]]
		if !ok {
			return fmt.Errorf("no expectation evaluated for %s", pyFiles[i])
		}
		rel, err := filepath.Rel(filepath.Join(src, "requests"), strings.TrimSuffix(f, ".http"))
		if err != nil {
			return fmt.Errorf("name case %s: %w", f, err)
		}
		c := Case{Name: filepath.ToSlash(rel), Input: latin1(input), Requests: e.Requests, Error: e.Error, Options: e.Options}
		if strings.HasPrefix(c.Name, "valid/") != (c.Error == "") {
			return fmt.Errorf("case %s: its folder and its expectation (error %q) disagree", c.Name, c.Error)
		}
		cases = append(cases, c)
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "\t")
	if err := enc.Encode(cases); err != nil {
		return fmt.Errorf("encode cases: %w", err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write cases: %w", err)
	}
	fmt.Printf("gen: %d cases (%d valid, %d invalid) written to %s\n", len(cases), countValid(cases), len(cases)-countValid(cases), out)
	return nil
}

func countValid(cases []Case) int {
	n := 0
	for _, c := range cases {
		if c.Error == "" {
			n++
		}
	}
	return n
}

// unescape decodes a .http file the way gunicorn's tests/treq.py does:
// newlines are only layout and dropped, then the escapes \r\n, \0, \n, \t and
// \xHH become bytes. Any other backslash is an error there, and here.
func unescape(raw []byte) ([]byte, error) {
	s := bytes.ReplaceAll(raw, []byte("\n"), nil)
	s = bytes.ReplaceAll(s, []byte(`\r\n`), []byte("\r\n"))
	s = bytes.ReplaceAll(s, []byte(`\0`), []byte{0})
	s = bytes.ReplaceAll(s, []byte(`\n`), []byte("\n"))
	s = bytes.ReplaceAll(s, []byte(`\t`), []byte("\t"))
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		// treq.py decodes \xHH only when four bytes remain after the
		// backslash's position (i+3 < len); a shorter tail stays as is.
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(string(s[i+2:i+4]), 16, 8); err == nil {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		out = append(out, s[i])
	}
	if bytes.IndexByte(out, '\\') >= 0 {
		return nil, errors.New("a backslash other than the escapes \\r\\n, \\0, \\n, \\t, \\xHH")
	}
	return out, nil
}

// latin1 maps each byte to the character of the same number.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// expectation is what the Python helper prints for one .py file.
type expectation struct {
	Requests []Request `json:"requests"`
	Error    string    `json:"error"`
	Options  []string  `json:"options"`
}

// evalPy evaluates gunicorn's expectation files. gunicorn itself is not
// needed: its modules are replaced by stand-ins that record cfg.set calls
// and turn any imported exception name into a class of that name. Bytes
// are written out as Latin-1 text (see Case).
const evalPy = `
import json, sys, types

class Config:
    def __init__(self):
        self.options = []
    def set(self, name, value):
        self.options.append("%s=%r" % (name, value))

class Errors(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        cls = type(name, (Exception,), {})
        setattr(self, name, cls)
        return cls

for name in ("gunicorn", "gunicorn.http"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["gunicorn.config"] = types.ModuleType("gunicorn.config")
sys.modules["gunicorn.config"].Config = Config
sys.modules["gunicorn.http.errors"] = Errors("gunicorn.http.errors")

def text(v):
    return v.decode("latin-1") if isinstance(v, bytes) else v

def fields(l):
    return [[text(n), text(v)] for n, v in l]

out = {}
for path in sys.argv[1:]:
    env = {"uri": lambda raw: raw, "cfg": Config()}
    with open(path, "rb") as f:
        exec(compile(f.read(), path, "exec"), env)
    r = env["request"]
    e = {"requests": [], "error": "", "options": env["cfg"].options}
    if isinstance(r, type):
        e["error"] = r.__name__
    else:
        for q in (r if isinstance(r, list) else [r]):
            e["requests"].append({
                "method": text(q["method"]),
                "target": text(q["uri"]),
                "version": "HTTP/%d.%d" % q["version"],
                "headers": fields(q["headers"]),
                "body": text(q["body"]),
                "trailers": fields(q.get("trailers", [])),
            })
    out[path] = e
json.dump(out, sys.stdout)
`

func evalExpectations(python string, files []string) (map[string]expectation, error) {
	cmd := exec.Command(python, append([]string{"-c", evalPy}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("evaluate %d expectation files with %s: %w: %s", len(files), python, err, stderr.Bytes())
	}
	var m map[string]expectation
	if err := json.Unmarshal(stdout, &m); err != nil {
		return nil, fmt.Errorf("read what %s printed for the expectation files: %w", python, err)
	}
	return m, nil
}
