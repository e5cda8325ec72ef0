package stack_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/infra/policy"
	"github.com/apitap/apitap/infra/stack"
	"github.com/apitap/apitap/tests/testkit"
)

// The external tools come from scripts/infra-deps.sh (make infra-test
// runs it first): cfn-lint and checkov in a virtual environment, the CDK
// command line in node_modules.

func pyBin(t *testing.T, tool string) string { return testkit.PyBin(t, tool) }

func writeTemplate(t *testing.T, variant string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), variant+".template.json")
	must(t, os.WriteFile(p, synth(t, variant).json, 0o644))
	return p
}

// cfn-lint: no errors (warnings are logged). Its exit code is a bit mask:
// 2 errors, 4 warnings, 8 informational.
func TestCfnLint(t *testing.T) {
	lint := pyBin(t, "cfn-lint")
	for _, variant := range []string{"full", "scram"} {
		out, err := exec.Command(lint, "--format", "parseable", writeTemplate(t, variant)).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code&2 != 0 || code == 1 || code == 32 {
			t.Errorf("%s: cfn-lint exit %d:\n%s", variant, code, out)
		} else if len(out) > 0 {
			t.Logf("%s: cfn-lint warnings:\n%s", variant, out)
		}
	}
}

// checkov: every failed check is fixed, or skipped in the template with
// its reason (Metadata checkov.skip, see nag.go).
func TestCheckov(t *testing.T) {
	checkov := pyBin(t, "checkov")
	for _, variant := range []string{"full", "scram"} {
		cmd := exec.Command(checkov, "--quiet", "--compact", "--skip-download", "--framework", "cloudformation",
			"--output", "json", "-f", writeTemplate(t, variant))
		cmd.Env = append(os.Environ(), "BC_SKIP_MAPPING=TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false")
		out, err := cmd.Output()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		var report struct {
			Results struct {
				Failed []struct {
					CheckID  string `json:"check_id"`
					Resource string `json:"resource"`
					Name     string `json:"check_name"`
				} `json:"failed_checks"`
			} `json:"results"`
			Summary struct {
				Passed        int `json:"passed"`
				Failed        int `json:"failed"`
				Skipped       int `json:"skipped"`
				ParsingErrors int `json:"parsing_errors"`
			} `json:"summary"`
		}
		if err := json.Unmarshal(out, &report); err != nil {
			t.Fatalf("%s: checkov output: %v\n%s", variant, err, out)
		}
		for _, f := range report.Results.Failed {
			t.Errorf("%s: checkov %s failed for %s: %s", variant, f.CheckID, f.Resource, f.Name)
		}
		if report.Summary.Passed < 50 || report.Summary.ParsingErrors > 0 || report.Summary.Failed != len(report.Results.Failed) {
			t.Errorf("%s: checkov summary %+v: did it read the template?", variant, report.Summary)
		}
		t.Logf("%s: checkov: %d passed, %d failed, %d skipped with reasons", variant, report.Summary.Passed, report.Summary.Failed, report.Summary.Skipped)
	}
}

// handlers.json holds, for every resource type of the templates, exactly
// the handler permissions of the CloudFormation registry schemas that
// cfn-lint ships.
func TestPolicyHandlersMatchSchemas(t *testing.T) {
	lint := pyBin(t, "cfn-lint")
	py := filepath.Join(filepath.Dir(lint), "python")
	types := map[string]bool{}
	for _, variant := range []string{"full", "scram"} {
		for _, r := range synth(t, variant).model.Resources {
			if strings.HasPrefix(r.Type, "AWS::") && r.Type != "AWS::CDK::Metadata" {
				types[r.Type] = true
			}
		}
	}
	var list []string
	for typ := range types {
		list = append(list, typ)
	}
	sort.Strings(list)
	script := `
import glob, json, os, sys
import cfnlint.data.schemas as schemas
want = set(json.loads(sys.argv[1]))
out = {}
for f in glob.glob(os.path.join(os.path.dirname(schemas.__file__), "resources", "*.json")):
    d = json.load(open(f))
    if d.get("typeName") in want:
        h = d.get("handlers", {})
        out[d["typeName"]] = {k: sorted(set(h[k]["permissions"])) for k in ("create", "read", "update", "delete") if k in h}
print(json.dumps(out))
`
	arg, _ := json.Marshal(list)
	out, err := exec.Command(py, "-c", script, string(arg)).Output()
	if err != nil {
		t.Fatalf("reading cfn-lint's schemas: %v", err)
	}
	var schemas policy.Handlers
	must(t, json.Unmarshal(out, &schemas))
	have := policy.LoadHandlers()
	for _, typ := range list {
		if jsonOf(schemas[typ]) != jsonOf(have[typ]) {
			t.Errorf("%s: handlers.json has %v, the schema says %v", typ, have[typ], schemas[typ])
		}
	}
}

// `cdk synth` through the real CDK command line, as `make synth` runs it,
// with the repository's cdk.json and the binaries under bin/.
func TestCDKSynth(t *testing.T) {
	root, err := filepath.Abs("../..")
	must(t, err)
	cdk := os.Getenv("APITAP_CDK")
	if cdk == "" {
		cdk = filepath.Join(root, "node_modules", ".bin", "cdk")
	}
	if _, err := os.Stat(cdk); err != nil {
		t.Fatalf("the CDK command line is not at %s: run scripts/infra-deps.sh (or set APITAP_CDK)", cdk)
	}
	for _, p := range []string{"bin/linux-arm64/sniffer", "bin/functions/reconcile/bootstrap"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Fatalf("%s is missing: make build-functions build-sniffer-arm64 first", p)
		}
	}
	out := t.TempDir()
	start := time.Now()
	cmd := exec.Command(cdk, "synth", "--no-notices", "--quiet", "--output", out)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CDK_DISABLE_CLI_TELEMETRY=true")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cdk synth: %v\n%s", err, b)
	}
	t.Logf("cdk synth took %s", time.Since(start).Round(time.Second))
	var tmpl tmplModel
	body, err := os.ReadFile(filepath.Join(out, "apitap.template.json"))
	must(t, err)
	must(t, json.Unmarshal(body, &tmpl))
	n := 0
	for _, r := range tmpl.Resources {
		if r.Type == "AWS::EC2::TrafficMirrorTarget" || r.Type == "AWS::AutoScaling::AutoScalingGroup" || r.Type == "AWS::Lambda::Function" {
			n++
		}
	}
	if want := 2 + len(stack.FunctionSpecs); n != want {
		t.Errorf("cdk synth: template lacks the mirror target, the fleet or the functions (%d of %d)", n, want)
	}
}
