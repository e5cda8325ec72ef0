package summary

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func sample() *Summary {
	s := &Summary{
		Function: "reconcile", Trigger: "scheduled",
		Desired: 12, Actual: 9, Created: 4, Deleted: 1, Kept: 7, Conflicts: 2,
		Unsupported: 3, Protected: 6, Errors: 5, APICalls: 17, Refused: 1, UndocumentedErrors: 8,
		Duration: 1500*time.Millisecond + 250*time.Microsecond,
	}
	s.Add(Detail{ENI: "eni-0abc0000000000001", LB: "arn:lb/web-alb", Session: "tms-01", Action: ActionCreated})
	s.Add(Detail{ENI: "eni-0abc0000000000002", Action: ActionConflict, Reason: "foreign session tms-99"})
	return s
}

// wantMetrics are the metrics and values of sample().
var wantMetrics = map[string]struct {
	unit  string
	value float64
}{
	"Desired": {"Count", 12}, "Actual": {"Count", 9}, "Created": {"Count", 4}, "Deleted": {"Count", 1},
	"Conflicts": {"Count", 2}, "Unsupported": {"Count", 3}, "Errors": {"Count", 5}, "APICalls": {"Count", 17},
	"Duration": {"Milliseconds", 1500.25}, "Refused": {"Count", 1}, "UndocumentedErrors": {"Count", 8},
}

// validUnits are the units the EMF specification's schema accepts.
var validUnits = strings.Split("Seconds|Microseconds|Milliseconds|Bytes|Kilobytes|Megabytes|Gigabytes|Terabytes|Bits|Kilobits|Megabits|Gigabits|Terabits|Percent|Count|Bytes/Second|Kilobytes/Second|Megabytes/Second|Gigabytes/Second|Terabytes/Second|Bits/Second|Kilobits/Second|Megabits/Second|Gigabits/Second|Terabits/Second|Count/Second|None", "|")

// checkEMF validates line against the Embedded Metric Format specification
// and returns the root object and the one MetricDirective.
func checkEMF(t *testing.T, line []byte) (root, directive map[string]any) {
	t.Helper()
	if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
		t.Fatalf("not a single line: %q", line)
	}
	// The LogEvent must be one JSON object with nothing before or after.
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, line)
	}
	if dec.More() {
		t.Fatalf("data after the JSON object: %s", line)
	}
	aws, ok := root["_aws"].(map[string]any)
	if !ok {
		t.Fatalf("_aws is not an object: %s", line)
	}
	for k := range aws {
		if k != "Timestamp" && k != "CloudWatchMetrics" {
			t.Errorf("_aws has member %s the specification does not define", k)
		}
	}
	ts, ok := aws["Timestamp"].(json.Number)
	if _, err := ts.Int64(); !ok || err != nil {
		t.Errorf("Timestamp %v is not an integer", aws["Timestamp"])
	}
	directives, ok := aws["CloudWatchMetrics"].([]any)
	if !ok || len(directives) != 1 {
		t.Fatalf("CloudWatchMetrics = %v, want one MetricDirective", aws["CloudWatchMetrics"])
	}
	directive, ok = directives[0].(map[string]any)
	if !ok {
		t.Fatalf("MetricDirective is not an object: %v", directives[0])
	}
	if len(directive) != 3 {
		t.Errorf("MetricDirective members = %v, want exactly Namespace, Dimensions, Metrics", directive)
	}
	if ns, ok := directive["Namespace"].(string); !ok || ns == "" {
		t.Errorf("Namespace = %v", directive["Namespace"])
	}
	sets, ok := directive["Dimensions"].([]any)
	if !ok || len(sets) < 1 {
		t.Fatalf("Dimensions = %v, want an array of at least one DimensionSet", directive["Dimensions"])
	}
	for _, set := range sets {
		keys, ok := set.([]any)
		if !ok || len(keys) > 30 {
			t.Fatalf("DimensionSet %v is not an array of at most 30 keys", set)
		}
		for _, k := range keys {
			name, ok := k.(string)
			if !ok {
				t.Fatalf("dimension key %v is not a string", k)
			}
			if v, ok := root[name].(string); !ok || v == "" || len(v) > 1024 {
				t.Errorf("dimension %s: top-level value %v is not a string of 1 to 1024 characters", name, root[name])
			}
		}
	}
	defs, ok := directive["Metrics"].([]any)
	if !ok || len(defs) == 0 || len(defs) > 100 {
		t.Fatalf("Metrics = %v, want 1 to 100 MetricDefinitions", directive["Metrics"])
	}
	for _, d := range defs {
		def, ok := d.(map[string]any)
		if !ok {
			t.Fatalf("MetricDefinition %v is not an object", d)
		}
		name, ok := def["Name"].(string)
		if !ok || name == "" {
			t.Fatalf("MetricDefinition %v has no Name", def)
		}
		if unit, ok := def["Unit"].(string); ok {
			valid := false
			for _, u := range validUnits {
				valid = valid || u == unit
			}
			if !valid {
				t.Errorf("metric %s: unit %q is not a CloudWatch unit", name, unit)
			}
		}
		if _, ok := root[name].(json.Number); !ok {
			t.Errorf("metric %s: top-level value %v is not a number", name, root[name])
		}
	}
	return root, directive
}

func TestEMF(t *testing.T) {
	var buf bytes.Buffer
	before := time.Now().UnixMilli()
	dims := map[string]string{"Function": "reconcile", "Stack": "apitap"}
	if err := sample().EMF(&buf, "apitap", dims); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	root, directive := checkEMF(t, buf.Bytes())

	ts, _ := root["_aws"].(map[string]any)["Timestamp"].(json.Number).Int64()
	if ts < before || ts > after {
		t.Errorf("Timestamp %d not in [%d, %d]: not milliseconds since the epoch of now", ts, before, after)
	}
	if directive["Namespace"] != "apitap" {
		t.Errorf("Namespace = %v", directive["Namespace"])
	}
	if got := fmt.Sprint(directive["Dimensions"]); got != "[[Function Stack]]" {
		t.Errorf("Dimensions = %s, want [[Function Stack]]", got)
	}
	for k, v := range dims {
		if root[k] != v {
			t.Errorf("dimension %s = %v, want %s", k, root[k], v)
		}
	}
	defs := directive["Metrics"].([]any)
	if len(defs) != len(wantMetrics) {
		t.Errorf("%d metrics, want %d", len(defs), len(wantMetrics))
	}
	for _, d := range defs {
		def := d.(map[string]any)
		name := def["Name"].(string)
		want, ok := wantMetrics[name]
		if !ok {
			t.Errorf("unexpected metric %s", name)
			continue
		}
		if def["Unit"] != want.unit {
			t.Errorf("metric %s: unit %v, want %s", name, def["Unit"], want.unit)
		}
		if v, _ := root[name].(json.Number).Float64(); v != want.value {
			t.Errorf("metric %s = %v, want %v", name, v, want.value)
		}
	}
}

func TestEMFWithoutDimensions(t *testing.T) {
	var buf bytes.Buffer
	if err := (&Summary{}).EMF(&buf, "apitap", nil); err != nil {
		t.Fatal(err)
	}
	_, directive := checkEMF(t, buf.Bytes())
	// Dimensions needs at least one DimensionSet; an empty set is allowed.
	if got := fmt.Sprint(directive["Dimensions"]); got != "[[]]" {
		t.Errorf("Dimensions = %s, want [[]]", got)
	}
}

func TestEMFRejects(t *testing.T) {
	tooMany := map[string]string{}
	for i := range 31 {
		tooMany[fmt.Sprintf("D%02d", i)] = "x"
	}
	for name, tc := range map[string]struct {
		namespace string
		dims      map[string]string
	}{
		"empty namespace":       {"", nil},
		"long namespace":        {strings.Repeat("n", 1025), nil},
		"31 dimensions":         {"apitap", tooMany},
		"dimension is a metric": {"apitap", map[string]string{"Errors": "x"}},
		"dimension _aws":        {"apitap", map[string]string{"_aws": "x"}},
		"empty dimension name":  {"apitap", map[string]string{"": "x"}},
		"long dimension name":   {"apitap", map[string]string{strings.Repeat("k", 251): "x"}},
		"empty value":           {"apitap", map[string]string{"Function": ""}},
		"long value":            {"apitap", map[string]string{"Function": strings.Repeat("v", 1025)}},
	} {
		var buf bytes.Buffer
		if err := sample().EMF(&buf, tc.namespace, tc.dims); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: wrote %q despite the error", name, buf.String())
		}
	}
	// The limits themselves are allowed.
	ok := map[string]string{}
	for i := range 30 {
		ok[fmt.Sprintf("D%02d", i)] = strings.Repeat("v", 1024)
	}
	var buf bytes.Buffer
	if err := sample().EMF(&buf, strings.Repeat("n", 1024), ok); err != nil {
		t.Fatal(err)
	}
	checkEMF(t, buf.Bytes())
}

// logged runs s.Log into a JSON handler and returns the record.
func logged(t *testing.T, s *Summary) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	s.Log(slog.New(slog.NewJSONHandler(&buf, nil)))
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("want one line, got %q", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	return rec
}

func TestLog(t *testing.T) {
	rec := logged(t, sample())
	for k, want := range map[string]any{
		"level": "WARN", "msg": "invocation summary", "function": "reconcile", "trigger": "scheduled",
		"desired": 12.0, "actual": 9.0, "created": 4.0, "deleted": 1.0, "kept": 7.0, "conflicts": 2.0,
		"unsupported": 3.0, "protected": 6.0, "errors": 5.0, "api_calls": 17.0, "duration_ms": 1500.25,
		"details_omitted": 0.0,
	} {
		if rec[k] != want {
			t.Errorf("%s = %v (%T), want %v", k, rec[k], rec[k], want)
		}
	}
	details, ok := rec["details"].([]any)
	if !ok || len(details) != 2 {
		t.Fatalf("details = %v", rec["details"])
	}
	first := details[0].(map[string]any)
	if first["eni"] != "eni-0abc0000000000001" || first["lb"] != "arn:lb/web-alb" || first["session"] != "tms-01" || first["action"] != "created" {
		t.Errorf("details[0] = %v", first)
	}
	if second := details[1].(map[string]any); second["action"] != "conflict" || second["reason"] != "foreign session tms-99" {
		t.Errorf("details[1] = %v", second)
	}

	clean := logged(t, &Summary{Function: "teardown"})
	if clean["level"] != "INFO" {
		t.Errorf("level without errors = %v, want INFO", clean["level"])
	}
	if d, ok := clean["details"].([]any); !ok || len(d) != 0 {
		t.Errorf("details without any = %v, want []", clean["details"])
	}
}

func TestDetailsCapped(t *testing.T) {
	s := &Summary{}
	for i := range MaxDetails + 50 {
		s.Add(Detail{ENI: fmt.Sprintf("eni-%d", i), Action: ActionCreated})
	}
	if len(s.Details) != MaxDetails || s.DetailsOmitted != 50 {
		t.Fatalf("kept %d, omitted %d; want %d, 50", len(s.Details), s.DetailsOmitted, MaxDetails)
	}
	if s.Details[MaxDetails-1].ENI != fmt.Sprintf("eni-%d", MaxDetails-1) {
		t.Errorf("did not keep the first details: last kept %s", s.Details[MaxDetails-1].ENI)
	}
	rec := logged(t, s)
	if d := rec["details"].([]any); len(d) != MaxDetails || rec["details_omitted"] != 50.0 {
		t.Errorf("logged %d details, omitted %v; want %d, 50", len(d), rec["details_omitted"], MaxDetails)
	}

	// Details appended directly are capped when logged.
	direct := &Summary{Details: make([]Detail, MaxDetails+20), DetailsOmitted: 5}
	rec = logged(t, direct)
	if d := rec["details"].([]any); len(d) != MaxDetails || rec["details_omitted"] != 25.0 {
		t.Errorf("logged %d details, omitted %v; want %d, 25", len(d), rec["details_omitted"], MaxDetails)
	}
}
