package stack_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/tests/invoke/sampleworld"
)

// emitted is one metric as a function's EMF line names it.
type emitted struct {
	namespace, name string
	dims            string // sorted dimension names, comma-separated
	function        string // the Function dimension's value
}

// emfOfInvocations runs each function locally (tests/invoke: the handler
// against the simulated account) on a sample event and collects the
// metrics its EMF lines declare.
func emfOfInvocations(t *testing.T) map[emitted]bool {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "invoke")
	if out, err := exec.Command("go", "build", "-o", bin, "../../tests/invoke").CombinedOutput(); err != nil {
		t.Fatalf("building tests/invoke: %v\n%s", err, out)
	}
	samples := map[string]string{
		contract.FnInstanceEvents: "ec2-state-running.json",
		contract.FnStackEvents:    "cfn-stack-update-complete.json",
		contract.FnReconcile:      "scheduled-event.json",
		contract.FnTeardown:       "cfn-custom-resource-delete.json",
	}
	out := map[emitted]bool{}
	for _, fn := range contract.Functions {
		cmd := exec.Command(bin, "-fn", fn, "-event", filepath.Join("../../events", samples[fn]))
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("invoking %s: %v", fn, err)
		}
		lines := 0
		sc := bufio.NewScanner(bytes.NewReader(stdout))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var doc struct {
				AWS *struct {
					CloudWatchMetrics []struct {
						Namespace  string
						Dimensions [][]string
						Metrics    []struct{ Name string }
					}
				} `json:"_aws"`
				Function string
				Stack    string
			}
			if json.Unmarshal(sc.Bytes(), &doc) != nil || doc.AWS == nil {
				continue
			}
			lines++
			if doc.Stack != sampleworld.StackName || doc.Function != fn {
				t.Errorf("%s emits Function=%q Stack=%q", fn, doc.Function, doc.Stack)
			}
			for _, d := range doc.AWS.CloudWatchMetrics {
				for _, set := range d.Dimensions {
					set = append([]string(nil), set...)
					sort.Strings(set)
					for _, m := range d.Metrics {
						out[emitted{d.Namespace, m.Name, strings.Join(set, ","), doc.Function}] = true
					}
				}
			}
		}
		if lines != 1 {
			t.Errorf("%s: %d EMF lines, want one per invocation", fn, lines)
		}
	}
	return out
}

// used is one metric as the dashboard or an alarm names it.
type used struct {
	where           string
	namespace, name string
	dims            map[string]string
}

// TestDashboardAndAlarmsNameEmittedMetrics: every metric of apitap's own
// namespaces on the dashboard and in the alarms is one the code emits,
// with the same dimensions: the functions' from their EMF lines, the
// sniffers' from the metrics script the user data installs.
func TestDashboardAndAlarmsNameEmittedMetrics(t *testing.T) {
	s := synth(t, "full")
	emf := emfOfInvocations(t)
	var all []used
	for id, d := range s.ofType("AWS::CloudWatch::Dashboard") {
		var body struct {
			Widgets []struct {
				Properties struct {
					Metrics [][]any `json:"metrics"`
				} `json:"properties"`
			} `json:"widgets"`
		}
		must(t, json.Unmarshal([]byte(render(t, s, d["DashboardBody"]).(string)), &body))
		for _, w := range body.Widgets {
			var prev []any
			for _, m := range w.Properties.Metrics {
				u := used{where: "dashboard " + id, dims: map[string]string{}}
				var fields []string
				for i, x := range m {
					str, ok := x.(string)
					if !ok {
						break // the rendering options
					}
					if str == "." && i < len(prev) {
						str = fmt.Sprint(prev[i])
					}
					fields = append(fields, str)
				}
				prev = m
				u.namespace, u.name = fields[0], fields[1]
				for i := 2; i+1 < len(fields); i += 2 {
					u.dims[fields[i]] = fields[i+1]
				}
				all = append(all, u)
			}
		}
	}
	for id, a := range s.ofType("AWS::CloudWatch::Alarm") {
		if a["MetricName"] == nil {
			continue
		}
		u := used{where: "alarm " + id, namespace: fmt.Sprint(a["Namespace"]), name: fmt.Sprint(a["MetricName"]), dims: map[string]string{}}
		if ds, ok := render(t, s, a["Dimensions"]).([]any); ok {
			for _, d := range ds {
				kv := d.(map[string]any)
				u.dims[fmt.Sprint(kv["Name"])] = fmt.Sprint(kv["Value"])
			}
		}
		all = append(all, u)
	}

	script := userData(t, s)
	ours := 0
	for _, u := range all {
		var names []string
		for k := range u.dims {
			names = append(names, k)
		}
		sort.Strings(names)
		switch u.namespace {
		case contract.FunctionNamespace:
			ours++
			if !emf[emitted{u.namespace, u.name, strings.Join(names, ","), u.dims[contract.DimFunction]}] {
				t.Errorf("%s: %s/%s %v is emitted by no function", u.where, u.namespace, u.name, u.dims)
			}
			if u.dims[contract.DimStack] != s.cfg.StackName {
				t.Errorf("%s: %s/%s for stack %q", u.where, u.namespace, u.name, u.dims[contract.DimStack])
			}
		case contract.SnifferNamespace:
			ours++
			publish := fmt.Sprintf("--namespace %s --metric-name %s --unit Count \\\n\t--value \"$delta\" --dimensions %s", u.namespace, u.name, strings.Join(dimArgs(u.dims), " "))
			if !strings.Contains(script, publish) {
				t.Errorf("%s: %s/%s %v is not what the sniffers' metrics script publishes", u.where, u.namespace, u.name, u.dims)
			}
		default:
			if !strings.HasPrefix(u.namespace, "AWS/") {
				t.Errorf("%s: namespace %s is neither AWS's nor apitap's", u.where, u.namespace)
			}
		}
	}
	if ours < 5 {
		t.Errorf("only %d uses of apitap's metrics found: the dashboard was not read", ours)
	}
}

func dimArgs(dims map[string]string) []string {
	var out []string
	for k, v := range dims {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
