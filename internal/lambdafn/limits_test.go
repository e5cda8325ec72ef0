package lambdafn

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/apitap/apitap/events"
	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/orchestrator"
)

// TestCloudTrailEventNamingThousandTargets: one RegisterTargets event
// naming 1,000 targets (instances, or ip addresses) mirrors them all, and
// the DeregisterTargets event naming them removes them all. The simulated
// account refuses a call with more than 200 filter values in all, as EC2
// does; whatever the account does with undocumented tag filters, every
// call stays within that.
func TestCloudTrailEventNamingThousandTargets(t *testing.T) {
	const n = 1000
	for _, kind := range []string{"instance", "ip"} {
		for _, mode := range awssim.FilterModes {
			t.Run(kind+"/"+string(mode), func(t *testing.T) {
				clock := awssim.NewManualClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
				acct := awssim.New(awssim.Options{Clock: clock, UndocumentedFilters: mode})
				t.Cleanup(acct.Close)
				vpc := acct.AddVPC()
				nlb, err := acct.AddLoadBalancer("network", vpc, "apitap-mirror", nil)
				must(t, err)
				target, err := acct.AddMirrorTarget(nlb)
				must(t, err)
				filter := acct.AddMirrorFilter()
				alb, err := acct.AddLoadBalancer("application", vpc, "big", nil)
				must(t, err)
				tg, err := acct.AddTargetGroup(alb, kind)
				must(t, err)
				ids := make([]string, n)
				for i := range ids {
					if kind == "ip" {
						_, ids[i], err = acct.AddENI(vpc)
					} else {
						ids[i], _, err = acct.AddInstance(vpc, "m5.large")
					}
					must(t, err)
				}
				must(t, acct.Register(tg, ids...))

				cfg := orchestrator.Config{
					Config: inventory.Config{
						Mirror:       mirror.Config{StackName: "apitap", TargetID: target, FilterID: filter},
						MirrorNLBARN: nlb, VPCID: vpc, Region: awssim.DefaultRegion, AccountID: awssim.DefaultAccountID,
						LBARNs: []string{alb},
					},
					MutationsPerSecond: 50,
				}
				invoke := func(eventName string) {
					t.Helper()
					awsCfg := acct.Config()
					awsCfg.Retryer = awssim.QuickRetryer(3)
					var logs bytes.Buffer
					log := slog.New(slog.NewJSONHandler(&logs, nil))
					o, err := orchestrator.New(cfg, orchestrator.Clients{EC2: ec2.NewFromConfig(awsCfg), ELBv2: elbv2.NewFromConfig(awsCfg),
						Classic: elb.NewFromConfig(awsCfg), AutoScaling: autoscaling.NewFromConfig(awsCfg)}, clock, log)
					must(t, err)
					f := &Function{Name: contract.FnInstanceEvents, StackName: "apitap", O: o, Clock: clock, Log: log}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					acct.ResetCalls()
					must(t, f.InstanceEvents(ctx, targetsEvent(t, eventName, tg, ids)))
					// A call over 200 filter values is refused with
					// FilterLimitExceeded: it shows here as an error.
					summary := lastSummary(t, logs.Bytes())
					if summary["errors"] != 0.0 {
						t.Fatalf("%s: %v errors: %v", eventName, summary["errors"], summary["details"])
					}
					t.Logf("%s of %d %s targets (%s tag filters): %d API requests", eventName, n, kind, mode, acct.Calls().Total)
				}

				invoke("RegisterTargets")
				if got := ours(acct, "apitap", target); got != n {
					t.Fatalf("after RegisterTargets: %d sessions of ours, want %d", got, n)
				}
				clock.Advance(10 * time.Minute) // past the grace of new sessions
				must(t, acct.Deregister(tg, ids...))
				invoke("DeregisterTargets")
				if got := ours(acct, "apitap", target); got != 0 {
					t.Fatalf("after DeregisterTargets: %d sessions of ours, want 0", got)
				}
			})
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// targetsEvent is a CloudTrail (De)RegisterTargets event naming ids.
func targetsEvent(t *testing.T, name, tg string, ids []string) []byte {
	t.Helper()
	var ev map[string]any
	must(t, json.Unmarshal(events.Sample("cloudtrail-elbv2-register-targets-ip.json"), &ev))
	detail := ev["detail"].(map[string]any)
	detail["eventName"] = name
	targets := make([]map[string]any, len(ids))
	for i, id := range ids {
		targets[i] = map[string]any{"id": id, "port": 8080}
	}
	detail["requestParameters"] = map[string]any{"targetGroupArn": tg, "targets": targets}
	raw, err := json.Marshal(ev)
	must(t, err)
	return raw
}

func ours(acct *awssim.Account, stack, target string) int {
	n := 0
	for _, s := range acct.Sessions() {
		if s.Tags[contract.TagStack] == stack && s.Target == target {
			n++
		}
	}
	return n
}

// lastSummary is the last invocation summary in a JSON log.
func lastSummary(t *testing.T, logs []byte) map[string]any {
	t.Helper()
	var last map[string]any
	for _, line := range bytes.Split(logs, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["msg"] == "invocation summary" {
			last = m
		}
	}
	if last == nil {
		t.Fatal(fmt.Sprintf("no invocation summary in the log:\n%s", logs))
	}
	return last
}
