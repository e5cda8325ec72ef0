package sampleworld

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/apitap/apitap/internal/awssim"
)

// TestAccountDefaults reads what the operator commands check from the
// world through the real SDK clients.
func TestAccountDefaults(t *testing.T) {
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	cfg := w.Acct.Config()

	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || *id.Account != awssim.DefaultAccountID {
		t.Fatalf("caller %v %v", id, err)
	}

	offers, err := ec2.NewFromConfig(cfg).DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{{Name: aws.String("instance-type"), Values: []string{"c7g.large"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var zones []string
	for _, o := range offers.InstanceTypeOfferings {
		zones = append(zones, *o.Location)
	}
	if !slices.Equal(zones, Zones) {
		t.Errorf("c7g.large offered in %v, want %v", zones, Zones)
	}
	subnets, err := ec2.NewFromConfig(cfg).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: w.Subnets})
	if err != nil || len(subnets.Subnets) != len(Zones) || *subnets.Subnets[0].VpcId != w.VPC {
		t.Errorf("subnets %v %v", subnets, err)
	}

	if _, err := iam.NewFromConfig(cfg).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("AWSServiceRoleForAutoScaling")}); err != nil {
		t.Error(err)
	}
	ls, err := lambda.NewFromConfig(cfg).GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil || ls.AccountLimit.ConcurrentExecutions != 1000 {
		t.Errorf("lambda %v %v", ls, err)
	}
	st, err := cloudtrail.NewFromConfig(cfg).GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(w.TrailARN)})
	if err != nil || !*st.IsLogging {
		t.Errorf("trail %v %v", st, err)
	}
	q, err := servicequotas.NewFromConfig(cfg).GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{
		ServiceCode: aws.String(awssim.TrafficMirrorSessionsServiceCode), QuotaCode: aws.String(awssim.TrafficMirrorSessionsQuotaCode)})
	if err != nil || *q.Quota.Value != awssim.DefaultMaxSessions {
		t.Errorf("quota %v %v", q, err)
	}
}
