// Command invoke runs one of apitap's Lambda handlers locally on an event
// file, against a simulated AWS account (internal/awssim) holding the world
// the sample events describe (events/README.md):
//
//	go run ./tests/invoke -fn instance-events -event events/ec2-state-running.json
//
// It builds the world, brings it to the state the event implies (for a
// stop, the instance was mirrored before it stopped; for a start, it was
// not), rewrites the sample's ids to the ids the simulated account made,
// invokes the handler with the configuration the stack would set, and
// prints the function's JSON logs and EMF line, then the mirror sessions
// before and after. A custom resource request's ResponseURL is replaced by
// a local server that prints the response. It exits 1 when the handler
// returns an error, 2 on a usage or setup error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/lambdafn"
	"github.com/apitap/apitap/internal/orchestrator"
	"github.com/apitap/apitap/tests/invoke/sampleworld"
)

var handlers = map[string]lambdafn.Handler{
	"instance-events": (*lambdafn.Function).InstanceEvents,
	"stack-events":    (*lambdafn.Function).StackEvents,
	"reconcile":       (*lambdafn.Function).Reconcile,
	"teardown":        (*lambdafn.Function).Teardown,
}

// timeout is the invocation's deadline (the functions' Lambda timeout).
const timeout = 5 * time.Minute

func main() {
	fn := flag.String("fn", "", "function to run: instance-events, stack-events, reconcile, teardown, or a command: connections, preflight, status")
	eventFile := flag.String("event", "", "event file, e.g. events/ec2-state-running.json (not for the commands)")
	asJSON := flag.Bool("json", false, "commands: print JSON instead of tables")
	flag.Parse()
	if commands[*fn] && flag.NArg() == 0 {
		code, err := runCommand(os.Stdout, *fn, *asJSON)
		if err != nil {
			fmt.Fprintln(os.Stderr, "invoke:", err)
		}
		os.Exit(code)
	}
	h, ok := handlers[*fn]
	if !ok || *eventFile == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./tests/invoke -fn instance-events|stack-events|reconcile|teardown -event FILE\n       go run ./tests/invoke -fn connections|preflight|status [-json]")
		os.Exit(2)
	}
	raw, err := os.ReadFile(*eventFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "invoke:", err)
		os.Exit(2)
	}
	code, err := run(os.Stdout, *fn, h, raw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "invoke:", err)
	}
	os.Exit(code)
}

// run does one invocation; it returns the exit code.
func run(out io.Writer, name string, h lambdafn.Handler, raw []byte) (int, error) {
	w, err := sampleworld.New()
	if err != nil {
		return 2, fmt.Errorf("building the simulated account: %w", err)
	}
	defer w.Close()

	section(out, "ids: sample -> simulated account")
	for _, p := range w.Mapping() {
		fmt.Fprintf(out, "%s -> %s  (%s)\n", p.Sample, p.World, p.What)
	}
	env := w.Env()
	section(out, "configuration")
	for _, k := range sortedKeys(env) {
		fmt.Fprintf(out, "%s=%s\n", k, env[k])
	}
	cfg, err := lambdafn.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		return 2, fmt.Errorf("configuration: %w", err)
	}

	sc, err := scenarioFor(w, raw)
	if err != nil {
		return 2, err
	}
	section(out, "world before the event")
	for _, line := range sc.story {
		fmt.Fprintln(out, line)
	}
	if err := sc.prepare(w, cfg); err != nil {
		return 2, fmt.Errorf("preparing the world: %w", err)
	}

	ev := w.Rewrite(raw)
	resp := &responses{}
	if hasResponseURL(ev) {
		srv := httptest.NewServer(resp)
		defer srv.Close()
		if ev, err = setResponseURL(ev, srv.URL+"/cloudformation-response"); err != nil {
			return 2, err
		}
	}
	before := w.Acct.Sessions()
	section(out, "sessions before")
	printSessions(out, w, before)
	section(out, "event (ids rewritten)")
	out.Write(ev)
	fmt.Fprintln(out)

	section(out, "invoking "+name+": function log and EMF metrics")
	log := slog.New(slog.NewJSONHandler(out, nil))
	o, err := orchestrator.New(cfg, w.Clients(), w.Clock, log)
	if err != nil {
		return 2, fmt.Errorf("configuration: %w", err)
	}
	f := &lambdafn.Function{Name: name, StackName: cfg.Mirror.StackName, O: o, Clock: w.Clock, Log: log, Metrics: out, HTTP: http.DefaultClient}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w.Acct.ResetCalls()
	herr := h(f, ctx, ev)

	if bodies := resp.all(); len(bodies) > 0 {
		section(out, "response to CloudFormation")
		for _, b := range bodies {
			fmt.Fprintln(out, b)
		}
	}
	after := w.Acct.Sessions()
	section(out, "sessions after")
	printSessions(out, w, after)
	created, deleted := diff(before, after)
	section(out, "result")
	calls := w.Acct.Calls()
	fmt.Fprintf(out, "sessions created %d, deleted %d; AWS API requests %d\n", len(created), len(deleted), calls.Total)
	for _, k := range sortedKeys(calls.ByAction) {
		fmt.Fprintf(out, "  %3d %s\n", calls.ByAction[k], k)
	}
	for _, s := range created {
		fmt.Fprintln(out, "+ "+w.Describe(s))
	}
	for _, s := range deleted {
		fmt.Fprintln(out, "- "+w.Describe(s))
	}
	if herr != nil {
		fmt.Fprintf(out, "handler returned an error: %v\n", herr)
		return 1, nil
	}
	fmt.Fprintln(out, "handler returned no error")
	return 0, nil
}

func section(out io.Writer, title string) { fmt.Fprintf(out, "\n== %s\n", title) }

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func printSessions(out io.Writer, w *sampleworld.World, ss []awssim.Session) {
	sort.Slice(ss, func(i, j int) bool { return ss[i].ID < ss[j].ID })
	if len(ss) == 0 {
		fmt.Fprintln(out, "(none)")
	}
	for _, s := range ss {
		fmt.Fprintln(out, w.Describe(s))
	}
}

// diff returns the sessions only in after, and only in before.
func diff(before, after []awssim.Session) (created, deleted []awssim.Session) {
	in := func(ss []awssim.Session, id string) bool {
		for _, s := range ss {
			if s.ID == id {
				return true
			}
		}
		return false
	}
	for _, s := range after {
		if !in(before, s.ID) {
			created = append(created, s)
		}
	}
	for _, s := range before {
		if !in(after, s.ID) {
			deleted = append(deleted, s)
		}
	}
	return created, deleted
}

// responses records what the function PUTs to the ResponseURL.
type responses struct {
	mu     sync.Mutex
	bodies []string
}

func (r *responses) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, req.Method+" "+req.URL.Path+"\n"+string(b))
	r.mu.Unlock()
}

func (r *responses) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

func hasResponseURL(ev []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(ev, &m) != nil {
		return false
	}
	_, ok := m["ResponseURL"]
	return ok
}

// setResponseURL points a custom resource request's response at url: the
// presigned S3 URL of a sample is not reachable.
func setResponseURL(ev []byte, url string) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(ev, &m); err != nil {
		return nil, fmt.Errorf("replacing ResponseURL: %w", err)
	}
	m["ResponseURL"] = url
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("replacing ResponseURL: %w", err)
	}
	return b, nil
}

// errUnknownID is returned for an event naming ids the sample world does
// not have.
var errUnknownID = errors.New("the event names an id that is not in the sample world (events/README.md)")

func lookup(w *sampleworld.World, ids ...string) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		v, ok := w.Lookup(id)
		if !ok {
			return nil, fmt.Errorf("%w: %s", errUnknownID, id)
		}
		out[i] = v
	}
	return out, nil
}
