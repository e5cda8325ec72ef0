package awssim

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestDescribeInstanceTypeOfferings(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	if err := f.acct.SetInstanceTypeOfferings("us-east-1a", "c7g.large", "m5.large", "c6g.large"); err != nil {
		t.Fatal(err)
	}
	if err := f.acct.SetInstanceTypeOfferings("us-east-1b", "m5.large", "c6gn.large"); err != nil {
		t.Fatal(err)
	}
	if err := f.acct.SetInstanceTypeOfferings("eu-west-1a", "m5.large"); err == nil {
		t.Fatal("a zone of another region was accepted")
	}

	all := func(in *ec2.DescribeInstanceTypeOfferingsInput) []string {
		t.Helper()
		var got []string
		p := ec2.NewDescribeInstanceTypeOfferingsPaginator(f.ec2, in)
		for p.HasMorePages() {
			out, err := p.NextPage(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out.InstanceTypeOfferings {
				got = append(got, *o.Location+" "+string(o.InstanceType))
			}
		}
		return got
	}
	az := ec2types.LocationTypeAvailabilityZone
	for _, tc := range []struct {
		name string
		in   ec2.DescribeInstanceTypeOfferingsInput
		want []string
	}{
		{"zones", ec2.DescribeInstanceTypeOfferingsInput{LocationType: az},
			[]string{"us-east-1a c6g.large", "us-east-1a c7g.large", "us-east-1a m5.large", "us-east-1b c6gn.large", "us-east-1b m5.large"}},
		{"location filter", ec2.DescribeInstanceTypeOfferingsInput{LocationType: az, Filters: filters("location", "us-east-1b")},
			[]string{"us-east-1b c6gn.large", "us-east-1b m5.large"}},
		{"type filter with wildcard", ec2.DescribeInstanceTypeOfferingsInput{LocationType: az, Filters: filters("instance-type", "c*g*.large")},
			[]string{"us-east-1a c6g.large", "us-east-1a c7g.large", "us-east-1b c6gn.large"}},
		{"both filters", ec2.DescribeInstanceTypeOfferingsInput{LocationType: az, Filters: filters("location", "us-east-1a", "instance-type", "m5.large")},
			[]string{"us-east-1a m5.large"}},
		{"region (default)", ec2.DescribeInstanceTypeOfferingsInput{},
			[]string{"us-east-1 c6g.large", "us-east-1 c6gn.large", "us-east-1 c7g.large", "us-east-1 m5.large"}},
		{"zone ids", ec2.DescribeInstanceTypeOfferingsInput{LocationType: ec2types.LocationTypeAvailabilityZoneId, Filters: filters("location", "use1-az2")},
			[]string{"use1-az2 c6gn.large", "use1-az2 m5.large"}},
		{"pages of 5 over 5", ec2.DescribeInstanceTypeOfferingsInput{LocationType: az, MaxResults: aws.Int32(5)},
			[]string{"us-east-1a c6g.large", "us-east-1a c7g.large", "us-east-1a m5.large", "us-east-1b c6gn.large", "us-east-1b m5.large"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := all(&tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	// Pagination: more offerings than a page.
	var many []string
	for i := range 12 {
		many = append(many, "m"+string(rune('a'+i))+".large")
	}
	if err := f.acct.SetInstanceTypeOfferings("us-east-1c", many...); err != nil {
		t.Fatal(err)
	}
	f.acct.ResetCalls()
	got := all(&ec2.DescribeInstanceTypeOfferingsInput{LocationType: az, MaxResults: aws.Int32(5), Filters: filters("location", "us-east-1c")})
	if len(got) != 12 || f.acct.Calls().Get("ec2", "DescribeInstanceTypeOfferings") != 3 {
		t.Fatalf("%d offerings in %d calls", len(got), f.acct.Calls().Get("ec2", "DescribeInstanceTypeOfferings"))
	}

	_, err := f.ec2.DescribeInstanceTypeOfferings(c, &ec2.DescribeInstanceTypeOfferingsInput{LocationType: "planet"})
	wantCode(t, err, CodeInvalidParameterValue)
	_, err = f.ec2.DescribeInstanceTypeOfferings(c, &ec2.DescribeInstanceTypeOfferingsInput{Filters: filters("vcpu", "2")})
	wantCode(t, err, CodeInvalidFilter)
}

func TestDescribeVpcsAndSubnets(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	other := f.acct.AddVPC()
	subA, err := f.acct.AddSubnet(f.vpc, "us-east-1a")
	if err != nil {
		t.Fatal(err)
	}
	subB, _ := f.acct.AddSubnet(f.vpc, "us-east-1b")
	subO, _ := f.acct.AddSubnet(other, "us-east-1a")
	if _, err := f.acct.AddSubnet(f.vpc, "us-east-1z"); err == nil {
		t.Fatal("a zone the account does not have was accepted")
	}

	vpcs, err := f.ec2.DescribeVpcs(c, &ec2.DescribeVpcsInput{VpcIds: []string{other}})
	if err != nil {
		t.Fatal(err)
	}
	if len(vpcs.Vpcs) != 1 || *vpcs.Vpcs[0].VpcId != other || *vpcs.Vpcs[0].CidrBlock != "10.2.0.0/16" || vpcs.Vpcs[0].State != ec2types.VpcStateAvailable {
		t.Fatalf("vpcs %+v", vpcs.Vpcs)
	}
	_, err = f.ec2.DescribeVpcs(c, &ec2.DescribeVpcsInput{VpcIds: []string{f.vpc, "vpc-0000000000000dead"}})
	wantCode(t, err, CodeVpcNotFound)
	if want := "The vpc ID 'vpc-0000000000000dead' does not exist"; !strings.Contains(err.Error(), want) {
		t.Errorf("message: %v", err)
	}

	for _, tc := range []struct {
		name string
		in   ec2.DescribeSubnetsInput
		want []string
	}{
		{"all", ec2.DescribeSubnetsInput{}, []string{subA, subB, subO}},
		{"ids", ec2.DescribeSubnetsInput{SubnetIds: []string{subO, subA}}, []string{subA, subO}},
		{"vpc", ec2.DescribeSubnetsInput{Filters: filters("vpc-id", f.vpc)}, []string{subA, subB}},
		{"zone", ec2.DescribeSubnetsInput{Filters: filters("availability-zone", "us-east-1a")}, []string{subA, subO}},
		{"zone id", ec2.DescribeSubnetsInput{Filters: filters("availability-zone-id", "use1-az2")}, []string{subB}},
		{"paged", ec2.DescribeSubnetsInput{MaxResults: aws.Int32(5)}, []string{subA, subB, subO}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			p := ec2.NewDescribeSubnetsPaginator(f.ec2, &tc.in)
			for p.HasMorePages() {
				out, err := p.NextPage(c)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range out.Subnets {
					got = append(got, *s.SubnetId)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	out, _ := f.ec2.DescribeSubnets(c, &ec2.DescribeSubnetsInput{SubnetIds: []string{subB}})
	s := out.Subnets[0]
	if *s.VpcId != f.vpc || *s.AvailabilityZone != "us-east-1b" || *s.AvailabilityZoneId != "use1-az2" || *s.CidrBlock != "10.1.201.0/24" {
		t.Errorf("subnet %+v", s)
	}
	_, err = f.ec2.DescribeSubnets(c, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0000000000000dead"}})
	wantCode(t, err, CodeSubnetNotFound)
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 400 || !strings.Contains(err.Error(), "The subnet ID 'subnet-0000000000000dead' does not exist") {
		t.Errorf("error %v", err)
	}

	// Many VPCs page through.
	for range 11 {
		f.acct.AddVPC()
	}
	n := 0
	p := ec2.NewDescribeVpcsPaginator(f.ec2, &ec2.DescribeVpcsInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		out, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.Vpcs)
	}
	if n != 13 {
		t.Errorf("%d VPCs paged, want 13", n)
	}
}

func TestDescribeAvailabilityZones(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	out, err := f.ec2.DescribeAvailabilityZones(c, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, z := range out.AvailabilityZones {
		names = append(names, *z.ZoneName+"="+*z.ZoneId)
		if z.State != ec2types.AvailabilityZoneStateAvailable || *z.RegionName != "us-east-1" {
			t.Errorf("zone %+v", z)
		}
	}
	if want := []string{"us-east-1a=use1-az1", "us-east-1b=use1-az2", "us-east-1c=use1-az3"}; !slices.Equal(names, want) {
		t.Errorf("zones %v, want %v", names, want)
	}
	out, _ = f.ec2.DescribeAvailabilityZones(c, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1b"}})
	if len(out.AvailabilityZones) != 1 {
		t.Errorf("%d zones by name", len(out.AvailabilityZones))
	}
	_, err = f.ec2.DescribeAvailabilityZones(c, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1q"}})
	wantCode(t, err, CodeInvalidParameterValue)
}
