package moto_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/opsview"
	"github.com/apitap/apitap/tests/testkit"
)

// The connections command, run as a user runs it (a cdk.json, the
// deployed stack's outputs from CloudFormation), against moto after a
// reconcile: the simulator we did not write agrees on what can be
// selected and what is mirrored.
func TestConnectionsAgainstMoto(t *testing.T) {
	w := build(t, startMoto(t))
	w.invoke(contract.FnReconcile, []byte(`{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`))

	// The deployed stack, as far as the command reads it: its outputs.
	tmpl := map[string]any{
		"Resources": map[string]any{"Handle": map[string]any{"Type": "AWS::CloudFormation::WaitConditionHandle"}},
		"Outputs": map[string]any{
			"MirrorTargetId": map[string]any{"Value": w.target},
			"MirrorFilterId": map[string]any{"Value": w.filter},
		},
	}
	body, _ := json.Marshal(tmpl)
	_, err := cloudformation.NewFromConfig(w.awsConfig()).CreateStack(bg(), &cloudformation.CreateStackInput{
		StackName: aws.String(stack), TemplateBody: aws.String(string(body))})
	w.must(err)

	cdk := map[string]any{"context": map[string]any{
		"apitap:stackName": stack, "apitap:account": w.account(), "apitap:region": region,
		"apitap:vpcId": w.vpc, "apitap:vpcCidr": "10.20.0.0/16",
		"apitap:subnets":          map[string]any{w.subnet[0]: region + "a", w.subnet[1]: region + "b"},
		"apitap:loadBalancerArns": []any{w.shopALB, w.apiNLB},
		"apitap:loadBalancerTags": map[string]any{selectTag: selectVal},
		"apitap:kafkaBrokers":     []any{"b-1.kafka.internal:9092"},
	}}
	file := filepath.Join(t.TempDir(), "cdk.json")
	raw, _ := json.Marshal(cdk)
	w.must(os.WriteFile(file, raw, 0o644))

	dir := t.TempDir()
	bins, err := testkit.Build(dir, "./functions/connections")
	w.must(err)
	ctx, cancel := context.WithTimeout(bg(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins[0], "-json", "-context", file)
	cmd.Env = w.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("connections: %v\n%s", err, stderr.String())
	}
	var c opsview.Connections
	w.must(json.Unmarshal(stdout.Bytes(), &c))
	lbs := map[string]opsview.LBView{}
	for _, lb := range c.LoadBalancers {
		lbs[lb.ARN] = lb
	}
	if lb := lbs[w.elsewhere]; lb.SelectedBy != "tag" || !strings.Contains(lb.Why, "not in the stack's VPC") {
		t.Errorf("elsewhere: selected by %q, why %q", lb.SelectedBy, lb.Why)
	}
	if lb := lbs[w.mirrorNLB]; !strings.Contains(lb.Why, "the stack's own") {
		t.Errorf("the stack's own NLB: why %q", lb.Why)
	}
	mirrored := map[string][]string{}
	for _, lb := range c.LoadBalancers {
		for _, tg := range lb.Targets {
			if tg.ENI != "" {
				mirrored[tg.ENI] = append(mirrored[tg.ENI], tg.Mirrorable+" ours="+strings.Join(tg.Ours, ",")+" foreign="+strings.Join(tg.Foreign, ","))
			}
		}
	}
	for eni, want := range map[string]string{w.e1: "yes ours=tms-", w.e3: "yes ours=tms-", w.e4: "yes ours=tms-", w.e2: "foreign=tms-"} {
		if got := strings.Join(mirrored[eni], "; "); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", eni, got, want)
		}
	}
	if t.Failed() {
		t.Logf("connections:\n%s", stdout.String())
	}
}
