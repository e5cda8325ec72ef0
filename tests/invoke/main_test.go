package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/apitap/apitap/events"
)

// Every sample runs through `make invoke` with its function, and the
// handler succeeds on the world the sample implies. The ECS task samples
// must change exactly one session: the task's ENI is an ip target of
// api-ips in the sample world.
func TestEverySample(t *testing.T) {
	want := map[string]string{
		"ecs-task-state-running.json": "sessions created 1, deleted 0;",
		"ecs-task-state-stopped.json": "sessions created 0, deleted 1;",
	}
	for _, name := range events.Samples() {
		t.Run(name, func(t *testing.T) {
			fn := "instance-events"
			switch {
			case strings.HasPrefix(name, "cfn-custom-resource-"):
				fn = "teardown"
			case strings.HasPrefix(name, "cfn-"):
				fn = "stack-events"
			case strings.HasPrefix(name, "scheduled-"):
				fn = "reconcile"
			}
			var out bytes.Buffer
			code, err := run(&out, fn, handlers[fn], events.Sample(name))
			if err != nil || code != 0 {
				t.Fatalf("%s on %s: exit %d, %v\n%s", fn, name, code, err, out.String())
			}
			if w, ok := want[name]; ok && !strings.Contains(out.String(), w) {
				t.Errorf("%s on %s: output lacks %q\n%s", fn, name, w, out.String())
			}
		})
	}
}

// The operator commands on the sample world, as make invoke runs them
// (and as the README shows them).
func TestCommands(t *testing.T) {
	for name, want := range map[string][]string{
		"connections": {"not selectable: the stack's own load balancer", "web-alb", "mirrored"},
		"preflight":   {"10 ok, 0 warn, 0 fail"},
		"status":      {"web-alb", "mirroring", "sessions but no traffic", "last reconcile 1m0s ago"},
	} {
		var b strings.Builder
		code, err := runCommand(&b, name, false)
		if err != nil || code != 0 {
			t.Fatalf("%s: exit %d, %v\n%s", name, code, err, b.String())
		}
		for _, w := range want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s lacks %q:\n%s", name, w, b.String())
			}
		}
		// The README shows this very output.
		readme, err := os.ReadFile("../../README.md")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), "```\n"+b.String()+"```") {
			t.Errorf("README's %s output is not what make invoke FN=%s prints now:\n%s", name, name, b.String())
		}
		var j strings.Builder
		if code, err := runCommand(&j, name, true); err != nil || code != 0 || !json.Valid([]byte(j.String())) {
			t.Errorf("%s -json: exit %d, %v, valid JSON %v", name, code, err, json.Valid([]byte(j.String())))
		}
	}
}
