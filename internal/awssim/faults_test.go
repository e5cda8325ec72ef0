package awssim

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	f := newFixture(t, Options{Seed: 7})
	c := ctx(t)
	_, eni := f.instance(t, "m5.large")
	cfg := f.acct.Config()
	cfg.Retryer = QuickRetryer(30)
	client := ec2.NewFromConfig(cfg)

	f.acct.SetFaults(Faults{ThrottleRate: 0.5})
	f.acct.ResetCalls()
	const n = 40
	for i := range n {
		if _, err := client.DescribeInstances(c, &ec2.DescribeInstancesInput{}); err != nil {
			t.Fatalf("describe %d: %v", i, err)
		}
	}
	got := f.acct.Calls().Get("ec2", "DescribeInstances")
	// With half the requests throttled, 40 successes take about 80
	// requests; fewer than 50 would mean the faults were not injected.
	if got < 50 {
		t.Fatalf("%d requests for %d successes: throttling not injected", got, n)
	}

	// Creates under throttling: every success is one session, whatever
	// the retries, because the SDK keeps its ClientToken across attempts
	// and a throttled attempt changes nothing.
	for i := range 3 {
		if _, err := client.CreateTrafficMirrorSession(c, f.createInput(eni, int32(i+1), "s")); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(f.acct.Sessions()); got != 3 {
		t.Fatalf("%d sessions after 3 creates", got)
	}
	st := f.acct.Stats()
	throttled := 0
	for _, m := range st.Mutations {
		if m.Fault == "throttle" {
			throttled++
			if m.ErrorCode != CodeRequestLimitExceeded {
				t.Fatalf("throttled mutation code %q", m.ErrorCode)
			}
		}
	}
	if len(st.Mutations) != 3+throttled {
		t.Fatalf("%d mutations, %d throttled", len(st.Mutations), throttled)
	}
}

func TestThrottledCreateCreatesNothing(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	_, eni := f.instance(t, "m5.large")
	f.acct.SetFaults(Faults{ThrottleRate: 1, Actions: []string{"CreateTrafficMirrorSession"}})
	f.acct.ResetCalls()

	_, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 1, ""))
	wantCode(t, err, "RequestLimitExceeded")
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Fatalf("status: %v", err)
	}
	// The fixture's retryer makes 5 attempts; every one was throttled.
	if got := f.acct.Calls().Get("ec2", "CreateTrafficMirrorSession"); got != 5 {
		t.Fatalf("%d attempts, want 5", got)
	}
	if len(f.acct.Sessions()) != 0 || f.acct.Stats().SessionsCreated != 0 {
		t.Fatal("a throttled create created a session")
	}
	// Other actions are not affected.
	if _, err := f.ec2.DescribeTrafficMirrorSessions(c, &ec2.DescribeTrafficMirrorSessionsInput{}); err != nil {
		t.Fatal(err)
	}

	// ELB throttling is HTTP 400 Throttling.
	f.acct.SetFaults(Faults{ThrottleRate: 1})
	_, err = f.elbv2.DescribeLoadBalancers(c, &elbv2.DescribeLoadBalancersInput{})
	wantCode(t, err, "Throttling")
	if !errors.As(err, &re) || re.HTTPStatusCode() != 400 {
		t.Fatalf("status: %v", err)
	}
}

func TestServerErrors(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	f.acct.SetFaults(Faults{ServerErrorRate: 1})
	_, err := f.ec2.DescribeInstances(c, &ec2.DescribeInstancesInput{})
	if got := code(t, err); got != "InternalError" && got != "Unavailable" {
		t.Fatalf("code %q", got)
	}
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || (re.HTTPStatusCode() != 500 && re.HTTPStatusCode() != 503) {
		t.Fatalf("status: %v", err)
	}
	if got := f.acct.Calls().Get("ec2", "DescribeInstances"); got != 5 {
		t.Fatalf("5xx retried %d times, want 5 attempts", got)
	}
	_, err = f.elbv2.DescribeTargetGroups(c, &elbv2.DescribeTargetGroupsInput{})
	if got := code(t, err); got != "InternalFailure" && got != "ServiceUnavailable" {
		t.Fatalf("ELB code %q", got)
	}
	// A rate below one lets the retryer get through.
	f.acct.SetFaults(Faults{ServerErrorRate: 0.3})
	for range 20 {
		if _, err := f.ec2.DescribeInstances(c, &ec2.DescribeInstancesInput{}); err != nil {
			t.Fatal(err)
		}
	}
}

// A lost response after a create makes the SDK retry with the same token:
// the account answers with the original session and creates no second one.
func TestLostResponsesAreIdempotent(t *testing.T) {
	f := newFixture(t, Options{Seed: 3})
	c := ctx(t)
	cfg := f.acct.Config()
	cfg.Retryer = QuickRetryer(30)
	client := ec2.NewFromConfig(cfg)
	var enis []string
	for range 20 {
		_, eni := f.instance(t, "m5.large")
		enis = append(enis, eni)
	}
	f.acct.SetFaults(Faults{LostResponseRate: 0.5})
	var ids []string
	for _, eni := range enis {
		out, err := client.CreateTrafficMirrorSession(c, f.createInput(eni, 1, "stack-a"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.TrafficMirrorSession.TrafficMirrorSessionId))
	}
	var have []string
	for _, s := range f.acct.Sessions() {
		have = append(have, s.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(have, ids) {
		t.Fatalf("sessions %v, returned %v", have, ids)
	}
	lost := 0
	for _, m := range f.acct.Stats().Mutations {
		if m.Fault == "lost-response" {
			lost++
		}
	}
	if lost == 0 {
		t.Fatal("no response was lost")
	}
	if d := f.acct.Stats().Duplicates; len(d) != 0 {
		t.Fatalf("duplicates: %+v", d)
	}
}

func TestLatency(t *testing.T) {
	f := newFixture(t, Options{})
	f.acct.SetFaults(Faults{Latency: 30 * time.Millisecond})
	start := time.Now()
	if _, err := f.ec2.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("request took %v with 30ms latency", d)
	}
}

func TestEventualConsistency(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	f := newFixture(t, Options{Clock: clock})
	c := ctx(t)
	_, eni := f.instance(t, "m5.large")
	f.acct.SetFaults(Faults{SessionVisibilityDelay: 10 * time.Second})

	out, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 1, ""))
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.TrafficMirrorSession.TrafficMirrorSessionId)
	listed := func() []string {
		t.Helper()
		out, err := f.ec2.DescribeTrafficMirrorSessions(c, &ec2.DescribeTrafficMirrorSessionsInput{Filters: filters("network-interface-id", eni)})
		if err != nil {
			t.Fatal(err)
		}
		return sessionIDs(out)
	}
	if got := listed(); len(got) != 0 {
		t.Fatalf("new session visible at once: %v", got)
	}
	_, err = f.ec2.DescribeTrafficMirrorSessions(c, &ec2.DescribeTrafficMirrorSessionsInput{TrafficMirrorSessionIds: []string{id}})
	wantCode(t, err, CodeSessionNotFound)
	// The rules see the true state: the number is taken already.
	_, err = f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 1, ""))
	wantCode(t, err, CodeInvalidParameterValue)

	clock.Advance(10 * time.Second)
	if got := listed(); !slices.Equal(got, []string{id}) {
		t.Fatalf("after the delay: %v", got)
	}

	if _, err := f.ec2.DeleteTrafficMirrorSession(c, &ec2.DeleteTrafficMirrorSessionInput{TrafficMirrorSessionId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if got := listed(); !slices.Equal(got, []string{id}) {
		t.Fatalf("deleted session vanished at once: %v", got)
	}
	if len(f.acct.Sessions()) != 0 {
		t.Fatal("Sessions() shows a deleted session")
	}
	// Deleting again is refused even while it is still listed.
	_, err = f.ec2.DeleteTrafficMirrorSession(c, &ec2.DeleteTrafficMirrorSessionInput{TrafficMirrorSessionId: aws.String(id)})
	wantCode(t, err, CodeSessionNotFound)
	clock.Advance(10 * time.Second)
	if got := listed(); len(got) != 0 {
		t.Fatalf("deleted session still listed after the delay: %v", got)
	}
}

// Many clients at once, with throttling: the rules hold under contention.
func TestConcurrentClients(t *testing.T) {
	f := newFixture(t, Options{Seed: 11})
	c := ctx(t)
	var enis []string
	for range 10 {
		_, eni := f.instance(t, "m5.large")
		enis = append(enis, eni)
	}
	f.acct.SetFaults(Faults{ThrottleRate: 0.3})
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := f.acct.Config()
			cfg.Retryer = QuickRetryer(20)
			client := ec2.NewFromConfig(cfg)
			for i := range 30 {
				eni := enis[(w+i)%len(enis)]
				_, err := client.CreateTrafficMirrorSession(c, f.createInput(eni, int32(1+(w*30+i)%5), fmt.Sprint("w", w)))
				var ae smithy.APIError
				got := ""
				if errors.As(err, &ae) {
					got = ae.ErrorCode()
				} else if err != nil {
					got = err.Error()
				}
				mu.Lock()
				codes[got]++
				mu.Unlock()
				if i%3 == 0 {
					_, _ = client.DescribeTrafficMirrorSessions(c, &ec2.DescribeTrafficMirrorSessionsInput{})
				}
			}
		}()
	}
	wg.Wait()
	perENI := map[string]int{}
	for _, s := range f.acct.Sessions() {
		perENI[s.ENI]++
	}
	for eni, n := range perENI {
		if n > 3 {
			t.Fatalf("%s has %d sessions", eni, n)
		}
	}
	if st := f.acct.Stats(); st.MaxSessionsOnENI > 3 {
		t.Fatalf("max per ENI %d", st.MaxSessionsOnENI)
	}
	if codes[""] != len(f.acct.Sessions()) || codes[CodeSessionsPerENILimit] == 0 {
		t.Fatalf("outcomes %v for %d sessions", codes, len(f.acct.Sessions()))
	}
}
