package awssim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func filters(kv ...string) []ec2types.Filter {
	var fs []ec2types.Filter
	for i := 0; i < len(kv); i += 2 {
		fs = append(fs, ec2types.Filter{Name: aws.String(kv[i]), Values: []string{kv[i+1]}})
	}
	return fs
}

// exactlyOnce fails unless got holds each of want once and nothing else.
func exactlyOnce(t *testing.T, what string, got, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s: %s returned %d times", what, id, n)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: got %d, want %d", what, len(got), len(want))
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Fatalf("%s: %s missing", what, id)
		}
	}
}

func TestPaginatorsReturnEverythingOnce(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	var instances, enis, sessions []string
	for i := range 1200 {
		id, eni := f.instance(t, "m5.large")
		instances, enis = append(instances, id), append(enis, eni)
		for n := int32(1); n <= 3 && len(sessions) < 2500; n++ {
			sid, err := f.acct.AddSession(SessionSpec{ENI: eni, Target: f.target, Filter: f.filter, Number: n, VNI: int32(i + 1)})
			if err != nil {
				t.Fatal(err)
			}
			sessions = append(sessions, sid)
		}
	}
	f.acct.ResetCalls()

	// Sessions: the SDK paginator, at the maximum page and at a small one.
	for _, limit := range []int32{0, 1000, 300} {
		p := ec2.NewDescribeTrafficMirrorSessionsPaginator(f.ec2, &ec2.DescribeTrafficMirrorSessionsInput{}, func(o *ec2.DescribeTrafficMirrorSessionsPaginatorOptions) {
			o.Limit = limit
		})
		var got []string
		pages := 0
		for p.HasMorePages() {
			out, err := p.NextPage(c)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			got = append(got, sessionIDs(out)...)
		}
		exactlyOnce(t, fmt.Sprintf("sessions limit %d", limit), got, sessions)
		pageSize := int(limit)
		if pageSize == 0 {
			pageSize = 1000
		}
		if want := (2500 + pageSize - 1) / pageSize; pages != want {
			t.Fatalf("limit %d: %d pages, want %d", limit, pages, want)
		}
	}

	// Instances: 1,200 in pages of at most 1,000.
	ip := ec2.NewDescribeInstancesPaginator(f.ec2, &ec2.DescribeInstancesInput{}, func(o *ec2.DescribeInstancesPaginatorOptions) { o.Limit = 1000 })
	var gotInstances, gotENIs []string
	for ip.HasMorePages() {
		out, err := ip.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				gotInstances = append(gotInstances, aws.ToString(in.InstanceId))
				if len(in.NetworkInterfaces) != 1 || aws.ToInt32(in.NetworkInterfaces[0].Attachment.DeviceIndex) != 0 {
					t.Fatalf("instance ENIs = %+v", in.NetworkInterfaces)
				}
				gotENIs = append(gotENIs, aws.ToString(in.NetworkInterfaces[0].NetworkInterfaceId))
			}
		}
	}
	exactlyOnce(t, "instances", gotInstances, instances)
	exactlyOnce(t, "instance ENIs", gotENIs, enis)

	// ENIs: 1,200 plus none other, in pages of 500.
	np := ec2.NewDescribeNetworkInterfacesPaginator(f.ec2, &ec2.DescribeNetworkInterfacesInput{}, func(o *ec2.DescribeNetworkInterfacesPaginatorOptions) { o.Limit = 500 })
	var gotNI []string
	for np.HasMorePages() {
		out, err := np.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, ni := range out.NetworkInterfaces {
			gotNI = append(gotNI, aws.ToString(ni.NetworkInterfaceId))
		}
	}
	exactlyOnce(t, "network interfaces", gotNI, enis)

	calls := f.acct.Calls()
	if got := calls.Get("ec2", "DescribeTrafficMirrorSessions"); got != 3+3+9 {
		t.Fatalf("%d session describes (%v)", got, calls)
	}
	if got := calls.Get("ec2", "DescribeInstances"); got != 2 {
		t.Fatalf("%d instance describes", got)
	}
	if got := calls.Get("ec2", "DescribeNetworkInterfaces"); got != 3 {
		t.Fatalf("%d ENI describes", got)
	}

	// Out-of-range page sizes and foreign tokens are refused as AWS does.
	_, err := f.ec2.DescribeTrafficMirrorSessions(c, &ec2.DescribeTrafficMirrorSessionsInput{MaxResults: aws.Int32(1001)})
	wantCode(t, err, CodeInvalidParameterValue)
	_, err = f.ec2.DescribeInstances(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(4)})
	wantCode(t, err, CodeInvalidParameterValue)
	_, err = f.ec2.DescribeInstances(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5), InstanceIds: instances[:1]})
	wantCode(t, err, CodeInvalidParameterCombination)
	_, err = f.ec2.DescribeTrafficMirrorSessions(c, &ec2.DescribeTrafficMirrorSessionsInput{NextToken: aws.String("bogus")})
	wantCode(t, err, CodeInvalidPaginationToken)
}

// Deleting sessions between pages neither repeats nor skips the others.
func TestPaginationSurvivesDeletes(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	var all []string
	for range 40 {
		_, eni := f.instance(t, "m5.large")
		for n := int32(1); n <= 3; n++ {
			id, err := f.acct.AddSession(SessionSpec{ENI: eni, Target: f.target, Filter: f.filter, Number: n})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, id)
		}
	}
	p := ec2.NewDescribeTrafficMirrorSessionsPaginator(f.ec2, &ec2.DescribeTrafficMirrorSessionsInput{}, func(o *ec2.DescribeTrafficMirrorSessionsPaginatorOptions) { o.Limit = 10 })
	var got []string
	deleted := map[string]bool{}
	for p.HasMorePages() {
		out, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, sessionIDs(out)...)
		// Delete one already seen and one not yet seen.
		for _, id := range []string{got[0], all[len(all)-1-len(deleted)]} {
			if !deleted[id] {
				if err := f.acct.DeleteSessionByID(id); err == nil {
					deleted[id] = true
				}
			}
		}
	}
	var want []string
	for _, id := range all {
		if !deleted[id] || slices.Contains(got, id) {
			want = append(want, id)
		}
	}
	exactlyOnce(t, "sessions", got, want)
}

func TestDescribeFilters(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	vpc2 := f.acct.AddVPC()
	a, eniA := f.instance(t, "m5.large")
	b, eniB := f.instance(t, "c5.large")
	other, _, err := f.acct.AddInstance(vpc2, "m5.large")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.acct.StopInstance(b); err != nil {
		t.Fatal(err)
	}
	ipENI, ip, err := f.acct.AddENI(f.vpc)
	if err != nil {
		t.Fatal(err)
	}

	instanceIDs := func(fs []ec2types.Filter) []string {
		t.Helper()
		out, err := f.ec2.DescribeInstances(c, &ec2.DescribeInstancesInput{Filters: fs})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				ids = append(ids, aws.ToString(in.InstanceId))
			}
		}
		return ids
	}
	for _, tc := range []struct {
		fs   []ec2types.Filter
		want []string
	}{
		{filters("vpc-id", f.vpc), []string{a, b}},
		{filters("vpc-id", vpc2), []string{other}},
		{filters("instance-state-name", "running"), []string{a, other}},
		{filters("instance-state-name", "stopped", "vpc-id", f.vpc), []string{b}},
		{filters("network-interface.network-interface-id", eniB), []string{b}},
		{filters("instance-id", a), []string{a}},
		{filters("instance-type", "m5.*"), []string{a, other}},
		{[]ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{a, other}}}, []string{a, other}},
	} {
		if got := instanceIDs(tc.fs); !slices.Equal(got, tc.want) {
			t.Errorf("instances %v = %v, want %v", tc.fs[0].Values, got, tc.want)
		}
	}
	_, err = f.ec2.DescribeInstances(c, &ec2.DescribeInstancesInput{Filters: filters("no-such-filter", "x")})
	wantCode(t, err, CodeInvalidFilter)
	_, err = f.ec2.DescribeInstances(c, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-00000000000000bad"}})
	wantCode(t, err, CodeInstanceNotFound)

	eniIDs := func(fs []ec2types.Filter) []string {
		t.Helper()
		out, err := f.ec2.DescribeNetworkInterfaces(c, &ec2.DescribeNetworkInterfacesInput{Filters: fs})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range out.NetworkInterfaces {
			ids = append(ids, aws.ToString(e.NetworkInterfaceId))
		}
		return ids
	}
	if got := eniIDs(filters("addresses.private-ip-address", ip)); !slices.Equal(got, []string{ipENI}) {
		t.Errorf("ENI by ip = %v", got)
	}
	if got := eniIDs(filters("attachment.instance-id", a)); !slices.Equal(got, []string{eniA}) {
		t.Errorf("ENI by instance = %v", got)
	}
	if got := eniIDs(filters("vpc-id", f.vpc, "network-interface-id", eniB)); !slices.Equal(got, []string{eniB}) {
		t.Errorf("ENI by vpc and id = %v", got)
	}
	out, err := f.ec2.DescribeNetworkInterfaces(c, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniA, ipENI}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.NetworkInterfaces) != 2 {
		t.Fatalf("by ids: %d ENIs", len(out.NetworkInterfaces))
	}
	got := out.NetworkInterfaces[0]
	if got.Attachment == nil || aws.ToString(got.Attachment.InstanceId) != a || aws.ToInt32(got.Attachment.DeviceIndex) != 0 ||
		got.InterfaceType != ec2types.NetworkInterfaceTypeInterface || aws.ToString(got.VpcId) != f.vpc || len(got.PrivateIpAddresses) != 1 {
		t.Fatalf("ENI = %+v", got)
	}
	if out.NetworkInterfaces[1].Attachment != nil || aws.ToString(out.NetworkInterfaces[1].PrivateIpAddress) != ip {
		t.Fatalf("unattached ENI = %+v", out.NetworkInterfaces[1])
	}

	// Sessions by target, ENI, filter, number and tag.
	filter2 := f.acct.AddMirrorFilter()
	s1, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eniA, 1, "stack-a"))
	if err != nil {
		t.Fatal(err)
	}
	in := f.createInput(eniA, 2, "stack-b")
	in.TrafficMirrorFilterId = aws.String(filter2)
	s2, err := f.ec2.CreateTrafficMirrorSession(c, in)
	if err != nil {
		t.Fatal(err)
	}
	s3, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(ipENI, 1, ""))
	if err != nil {
		t.Fatal(err)
	}
	id1 := aws.ToString(s1.TrafficMirrorSession.TrafficMirrorSessionId)
	id2 := aws.ToString(s2.TrafficMirrorSession.TrafficMirrorSessionId)
	id3 := aws.ToString(s3.TrafficMirrorSession.TrafficMirrorSessionId)
	for _, tc := range []struct {
		fs   []ec2types.Filter
		want []string
	}{
		{filters("traffic-mirror-target-id", f.target), []string{id1, id2, id3}},
		{filters("network-interface-id", eniA), []string{id1, id2}},
		{filters("traffic-mirror-filter-id", filter2), []string{id2}},
		{filters("session-number", "1"), []string{id1, id3}},
		{filters("tag:apitap:stack", "stack-a"), []string{id1}},
		{filters("tag:apitap:stack", "stack-*"), []string{id1, id2}},
		{filters("tag-key", "apitap:stack"), []string{id1, id2}},
		{filters("network-interface-id", eniA, "session-number", "2"), []string{id2}},
	} {
		out, err := f.ec2.DescribeTrafficMirrorSessions(c, &ec2.DescribeTrafficMirrorSessionsInput{Filters: tc.fs})
		if err != nil {
			t.Fatal(err)
		}
		if got := sessionIDs(out); !slices.Equal(got, tc.want) {
			t.Errorf("sessions %s=%v: %v, want %v", aws.ToString(tc.fs[0].Name), tc.fs[0].Values, got, tc.want)
		}
	}

	// Mirror targets and filters.
	tOut, err := f.ec2.DescribeTrafficMirrorTargets(c, &ec2.DescribeTrafficMirrorTargetsInput{TrafficMirrorTargetIds: []string{f.target}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tOut.TrafficMirrorTargets) != 1 || aws.ToString(tOut.TrafficMirrorTargets[0].NetworkLoadBalancerArn) != f.nlb ||
		tOut.TrafficMirrorTargets[0].Type != ec2types.TrafficMirrorTargetTypeNetworkLoadBalancer {
		t.Fatalf("targets = %+v", tOut.TrafficMirrorTargets)
	}
	fOut, err := f.ec2.DescribeTrafficMirrorFilters(c, &ec2.DescribeTrafficMirrorFiltersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fOut.TrafficMirrorFilters) != 2 {
		t.Fatalf("filters = %+v", fOut.TrafficMirrorFilters)
	}
}

func TestLaunchTimeChangesOnStart(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	f := newFixture(t, Options{Clock: clock})
	c := ctx(t)
	id, _ := f.instance(t, "m5.large")
	launch := func() time.Time {
		t.Helper()
		out, err := f.ec2.DescribeInstances(c, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToTime(out.Reservations[0].Instances[0].LaunchTime)
	}
	first := launch()
	if !first.Equal(clock.Now()) {
		t.Fatalf("launch time %v, want %v", first, clock.Now())
	}
	if err := f.acct.StopInstance(id); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if err := f.acct.StartInstance(id); err != nil {
		t.Fatal(err)
	}
	if second := launch(); !second.Equal(first.Add(time.Hour)) {
		t.Fatalf("launch time after restart %v, want %v", second, first.Add(time.Hour))
	}
}
