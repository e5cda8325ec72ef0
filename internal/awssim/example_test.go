package awssim_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/apitap/apitap/internal/awssim"
)

// Build a small world from Go, then use the real SDK client against it.
func Example() {
	acct := awssim.New(awssim.Options{})
	defer acct.Close()

	vpc := acct.AddVPC()
	nlb, _ := acct.AddLoadBalancer("network", vpc, "sniffers", nil)
	target, _ := acct.AddMirrorTarget(nlb)
	filter := acct.AddMirrorFilter()
	_, eni, _ := acct.AddInstance(vpc, "m5.large")

	cfg := acct.Config()                             // static credentials, no real endpoint
	cfg.Retryer = awssim.QuickRetryer(5)             // keep fault tests fast
	acct.SetFaults(awssim.Faults{ThrottleRate: 0.3}) // the retryer copes
	client := ec2.NewFromConfig(cfg)

	_, err := client.CreateTrafficMirrorSession(context.Background(), &ec2.CreateTrafficMirrorSessionInput{
		NetworkInterfaceId:    aws.String(eni),
		TrafficMirrorTargetId: aws.String(target),
		TrafficMirrorFilterId: aws.String(filter),
		SessionNumber:         aws.Int32(1),
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeTrafficMirrorSession,
			Tags:         []ec2types.Tag{{Key: aws.String("apitap:stack"), Value: aws.String("demo")}},
		}},
	})
	fmt.Println(err, len(acct.Sessions()), acct.Sessions()[0].Tags["apitap:stack"])
	// Output: <nil> 1 demo
}
