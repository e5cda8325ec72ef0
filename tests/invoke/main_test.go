package main

import (
	"bytes"
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
