package awssim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go"
)

// fixture is an account with the four real SDK clients pointed at it and a
// minimal mirroring world: one VPC, an NLB as mirror target, one filter.
type fixture struct {
	acct   *Account
	ec2    *ec2.Client
	elbv2  *elbv2.Client
	elb    *elb.Client
	cfn    *cloudformation.Client
	vpc    string
	nlb    string
	target string
	filter string
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	a := New(opts)
	t.Cleanup(a.Close)
	cfg := a.Config()
	cfg.Retryer = QuickRetryer(5)
	cfg.AppID = "awssim-test"
	f := &fixture{
		acct:  a,
		ec2:   ec2.NewFromConfig(cfg),
		elbv2: elbv2.NewFromConfig(cfg),
		elb:   elb.NewFromConfig(cfg),
		cfn:   cloudformation.NewFromConfig(cfg),
	}
	f.vpc = a.AddVPC()
	var err error
	if f.nlb, err = a.AddLoadBalancer("network", f.vpc, "sniffers", nil); err != nil {
		t.Fatal(err)
	}
	if f.target, err = a.AddMirrorTarget(f.nlb); err != nil {
		t.Fatal(err)
	}
	f.filter = a.AddMirrorFilter()
	return f
}

func (f *fixture) instance(t *testing.T, typ string) (id, eni string) {
	t.Helper()
	id, eni, err := f.acct.AddInstance(f.vpc, typ)
	if err != nil {
		t.Fatal(err)
	}
	return id, eni
}

// createInput is a CreateTrafficMirrorSession request for eni with the
// fixture's target and filter.
func (f *fixture) createInput(eni string, number int32, stack string) *ec2.CreateTrafficMirrorSessionInput {
	in := &ec2.CreateTrafficMirrorSessionInput{
		NetworkInterfaceId:    aws.String(eni),
		TrafficMirrorTargetId: aws.String(f.target),
		TrafficMirrorFilterId: aws.String(f.filter),
		SessionNumber:         aws.Int32(number),
		VirtualNetworkId:      aws.Int32(4242),
	}
	if stack != "" {
		in.TagSpecifications = []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeTrafficMirrorSession,
			Tags:         []ec2types.Tag{{Key: aws.String("apitap:stack"), Value: aws.String(stack)}},
		}}
	}
	return in
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// code returns the API error code of err, "" when err is nil, and fails
// the test when err is not an API error.
func code(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae.ErrorCode()
}

func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := code(t, err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}
