package awssim

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func sessionIDs(out *ec2.DescribeTrafficMirrorSessionsOutput) []string {
	var ids []string
	for _, s := range out.TrafficMirrorSessions {
		ids = append(ids, aws.ToString(s.TrafficMirrorSessionId))
	}
	return ids
}

func TestSessionCreateDescribeDelete(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	_, eni := f.instance(t, "m5.large")

	in := f.createInput(eni, 7, "stack-a")
	in.PacketLength = aws.Int32(8500)
	in.Description = aws.String("apitap")
	out, err := f.ec2.CreateTrafficMirrorSession(c, in)
	if err != nil {
		t.Fatal(err)
	}
	s := out.TrafficMirrorSession
	if aws.ToString(s.NetworkInterfaceId) != eni || aws.ToString(s.TrafficMirrorTargetId) != f.target ||
		aws.ToString(s.TrafficMirrorFilterId) != f.filter || aws.ToInt32(s.SessionNumber) != 7 ||
		aws.ToInt32(s.VirtualNetworkId) != 4242 || aws.ToInt32(s.PacketLength) != 8500 ||
		aws.ToString(s.Description) != "apitap" || aws.ToString(s.OwnerId) != DefaultAccountID {
		t.Fatalf("created session = %+v", s)
	}
	if len(s.Tags) != 1 || aws.ToString(s.Tags[0].Key) != "apitap:stack" || aws.ToString(s.Tags[0].Value) != "stack-a" {
		t.Fatalf("tags = %+v", s.Tags)
	}
	// The SDK fills ClientToken itself; the account echoes it.
	if aws.ToString(out.ClientToken) == "" {
		t.Fatal("no client token echoed")
	}
	id := aws.ToString(s.TrafficMirrorSessionId)
	if !strings.HasPrefix(id, "tms-") {
		t.Fatalf("id = %q", id)
	}

	d, err := f.ec2.DescribeTrafficMirrorSessions(c, &ec2.DescribeTrafficMirrorSessionsInput{TrafficMirrorSessionIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if got := sessionIDs(d); !slices.Equal(got, []string{id}) {
		t.Fatalf("describe by id = %v", got)
	}
	if got := d.TrafficMirrorSessions[0]; aws.ToInt32(got.SessionNumber) != 7 || len(got.Tags) != 1 {
		t.Fatalf("described session = %+v", got)
	}

	// CreateTags adds to the session's tags; DescribeTags sees them.
	if _, err := f.ec2.CreateTags(c, &ec2.CreateTagsInput{
		Resources: []string{id},
		Tags:      []ec2types.Tag{{Key: aws.String("apitap:vni"), Value: aws.String("4242")}},
	}); err != nil {
		t.Fatal(err)
	}
	tags, err := f.ec2.DescribeTags(c, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{
		{Name: aws.String("resource-id"), Values: []string{id}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != 2 || tags.Tags[1].ResourceType != ec2types.ResourceTypeTrafficMirrorSession {
		t.Fatalf("DescribeTags = %+v", tags.Tags)
	}

	del, err := f.ec2.DeleteTrafficMirrorSession(c, &ec2.DeleteTrafficMirrorSessionInput{TrafficMirrorSessionId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(del.TrafficMirrorSessionId) != id {
		t.Fatalf("deleted id = %q", aws.ToString(del.TrafficMirrorSessionId))
	}
	_, err = f.ec2.DescribeTrafficMirrorSessions(c, &ec2.DescribeTrafficMirrorSessionsInput{TrafficMirrorSessionIds: []string{id}})
	wantCode(t, err, CodeSessionNotFound)
	_, err = f.ec2.DeleteTrafficMirrorSession(c, &ec2.DeleteTrafficMirrorSessionInput{TrafficMirrorSessionId: aws.String(id)})
	wantCode(t, err, "InvalidTrafficMirrorSessionId.NotFound")
	if n := len(f.acct.Sessions()); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

func TestSessionRules(t *testing.T) {
	f := newFixture(t, Options{MaxSessions: 5})
	c := ctx(t)
	_, eni := f.instance(t, "m5.large")

	for n := int32(1); n <= 3; n++ {
		if _, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, n, "")); err != nil {
			t.Fatalf("session %d: %v", n, err)
		}
	}
	_, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 4, ""))
	wantCode(t, err, "TrafficMirrorSessionsPerInterfaceLimitExceeded")

	_, eni2 := f.instance(t, "m5.large")
	if _, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni2, 1, "")); err != nil {
		t.Fatal(err)
	}
	// The same number twice on one ENI is refused by default (AWS does not
	// document it; see TestDuplicateNumbersAllowed); on another ENI it is
	// fine.
	_, err = f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni2, 1, ""))
	wantCode(t, err, CodeInvalidParameterValue)

	for _, n := range []int32{0, 32767, -1} {
		_, err = f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni2, n, ""))
		wantCode(t, err, CodeInvalidParameterValue)
	}
	if _, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni2, 32766, "")); err != nil {
		t.Fatalf("session number 32766: %v", err)
	}

	// Account quota (lowered to 5 here).
	_, eni3 := f.instance(t, "m5.large")
	_, err = f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni3, 1, ""))
	wantCode(t, err, "TrafficMirrorSessionLimitExceeded")

	// Unknown references.
	_, err = f.ec2.CreateTrafficMirrorSession(c, f.createInput("eni-nope", 1, ""))
	wantCode(t, err, CodeENINotFound)
	in := f.createInput(eni3, 1, "")
	in.TrafficMirrorTargetId = aws.String("tmt-nope")
	_, err = f.ec2.CreateTrafficMirrorSession(c, in)
	wantCode(t, err, CodeTargetNotFound)

	if s := f.acct.Stats(); s.MaxSessionsOnENI != 3 || s.MaxSessionsENI != eni {
		t.Fatalf("max per ENI = %d on %s", s.MaxSessionsOnENI, s.MaxSessionsENI)
	}
}

func TestUnsupportedInstanceType(t *testing.T) {
	f := newFixture(t, Options{UnsupportedInstanceTypes: []string{"c6i", "m7g.large"}})
	c := ctx(t)
	for _, typ := range []string{"c6i.xlarge", "m7g.large"} {
		_, eni := f.instance(t, typ)
		_, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 1, ""))
		wantCode(t, err, CodeNetworkInterfaceNotSupported)
		if !strings.Contains(err.Error(), "not supported for Traffic Mirroring") || !strings.Contains(err.Error(), typ) {
			t.Fatalf("message does not say why: %v", err)
		}
	}
	_, eni := f.instance(t, "m7g.xlarge") // the list names m7g.large only
	if _, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 1, "")); err != nil {
		t.Fatal(err)
	}
	// Default list: T2 cannot be a source.
	g := newFixture(t, Options{})
	_, eni = g.instance(t, "t2.micro")
	_, err := g.ec2.CreateTrafficMirrorSession(c, g.createInput(eni, 1, ""))
	wantCode(t, err, CodeNetworkInterfaceNotSupported)
	if len(f.acct.Sessions()) != 1 || len(g.acct.Sessions()) != 0 {
		t.Fatal("a refused create left a session behind")
	}
	// An ENI that is not of type interface cannot be a source either.
	nlbENI, _, err := g.acct.AddENIOfType(g.vpc, "network_load_balancer")
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.ec2.CreateTrafficMirrorSession(c, g.createInput(nlbENI, 1, ""))
	wantCode(t, err, CodeNetworkInterfaceNotSupported)
}

func TestClientTokenIdempotency(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	_, eni := f.instance(t, "m5.large")

	in := f.createInput(eni, 1, "stack-a")
	in.ClientToken = aws.String("token-1")
	first, err := f.ec2.CreateTrafficMirrorSession(c, in)
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(first.TrafficMirrorSession.TrafficMirrorSessionId)
	again, err := f.ec2.CreateTrafficMirrorSession(c, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(again.TrafficMirrorSession.TrafficMirrorSessionId); got != id {
		t.Fatalf("replay returned %s, want %s", got, id)
	}
	if n := len(f.acct.Sessions()); n != 1 {
		t.Fatalf("%d sessions after a replay", n)
	}

	// Other parameters with the same token fail.
	other := f.createInput(eni, 2, "stack-a")
	other.ClientToken = aws.String("token-1")
	_, err = f.ec2.CreateTrafficMirrorSession(c, other)
	wantCode(t, err, "IdempotentParameterMismatch")
	other = f.createInput(eni, 1, "stack-b") // tags count as parameters
	other.ClientToken = aws.String("token-1")
	_, err = f.ec2.CreateTrafficMirrorSession(c, other)
	wantCode(t, err, CodeIdempotentMismatch)

	// Even after the session is deleted, the replay returns the original
	// result and creates nothing.
	if _, err := f.ec2.DeleteTrafficMirrorSession(c, &ec2.DeleteTrafficMirrorSessionInput{TrafficMirrorSessionId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	late, err := f.ec2.CreateTrafficMirrorSession(c, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(late.TrafficMirrorSession.TrafficMirrorSessionId); got != id {
		t.Fatalf("late replay returned %s, want %s", got, id)
	}
	if n := len(f.acct.Sessions()); n != 0 {
		t.Fatalf("late replay created %d sessions", n)
	}

	// A failed create is not remembered: the token works once the cause
	// is gone.
	_, eni2 := f.instance(t, "m5.large")
	busy := f.createInput(eni2, 5, "")
	if _, err := f.ec2.CreateTrafficMirrorSession(c, busy); err != nil {
		t.Fatal(err)
	}
	retry := f.createInput(eni2, 5, "")
	retry.ClientToken = aws.String("token-2")
	_, err = f.ec2.CreateTrafficMirrorSession(c, retry)
	wantCode(t, err, CodeInvalidParameterValue)
	retry.SessionNumber = aws.Int32(6)
	if _, err := f.ec2.CreateTrafficMirrorSession(c, retry); err != nil {
		t.Fatalf("token after a failure: %v", err)
	}
}

func TestENIDeletionAndTerminationRemoveSessions(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	inst, primary := f.instance(t, "m5.large")
	secondary, _, err := f.acct.AddENI(f.vpc)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.acct.AttachENI(secondary, inst, 1); err != nil {
		t.Fatal(err)
	}
	_, other := f.instance(t, "m5.large")
	for _, eni := range []string{primary, primary, secondary, other} {
		n := int32(len(f.acct.Sessions()) + 1)
		if _, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, n, "")); err != nil {
			t.Fatal(err)
		}
	}

	// Stopping keeps sessions (they are billed while stopped).
	if err := f.acct.StopInstance(inst); err != nil {
		t.Fatal(err)
	}
	if n := len(f.acct.Sessions()); n != 4 {
		t.Fatalf("stop removed sessions: %d left", n)
	}
	// Termination deletes the primary ENI and its sessions; the secondary
	// ENI is detached and keeps its session.
	if err := f.acct.TerminateInstance(inst); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, s := range f.acct.Sessions() {
		left = append(left, s.ENI)
	}
	slices.Sort(left)
	want := []string{primary, secondary, other}[1:]
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("sessions left on %v, want %v", left, want)
	}
	_, err = f.ec2.DescribeNetworkInterfaces(c, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{primary}})
	wantCode(t, err, CodeENINotFound)
	d, err := f.ec2.DescribeInstances(c, &ec2.DescribeInstancesInput{InstanceIds: []string{inst}})
	if err != nil {
		t.Fatal(err)
	}
	got := d.Reservations[0].Instances[0]
	if got.State.Name != ec2types.InstanceStateNameTerminated || aws.ToInt32(got.State.Code) != 48 || len(got.NetworkInterfaces) != 0 {
		t.Fatalf("terminated instance = %+v", got)
	}

	if err := f.acct.DeleteENI(secondary); err != nil {
		t.Fatal(err)
	}
	if s := f.acct.Sessions(); len(s) != 1 || s[0].ENI != other {
		t.Fatalf("sessions after deleting the ENI: %+v", s)
	}
	if err := f.acct.StartInstance(inst); err == nil {
		t.Fatal("a terminated instance started")
	}
}

func TestDuplicateAndMutationStats(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	_, eni := f.instance(t, "m5.large")
	if _, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 1, "stack-a")); err != nil {
		t.Fatal(err)
	}
	// Another stack's session on the same ENI and target is no duplicate.
	if _, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 2, "stack-b")); err != nil {
		t.Fatal(err)
	}
	if d := f.acct.Stats().Duplicates; len(d) != 0 {
		t.Fatalf("duplicates = %+v", d)
	}
	dup, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 3, "stack-a"))
	if err != nil {
		t.Fatal(err)
	}
	st := f.acct.Stats()
	if len(st.Duplicates) != 1 || st.Duplicates[0].ENI != eni || st.Duplicates[0].Stack != "stack-a" || len(st.Duplicates[0].Sessions) != 2 {
		t.Fatalf("duplicates = %+v", st.Duplicates)
	}
	if len(st.Mutations) != 3 {
		t.Fatalf("%d mutations logged", len(st.Mutations))
	}
	m := st.Mutations[2]
	if m.Service != "ec2" || m.Action != "CreateTrafficMirrorSession" || m.ErrorCode != "" ||
		m.Params["NetworkInterfaceId"][0] != eni || m.Params["TagSpecification.1.Tag.1.Value"][0] != "stack-a" {
		t.Fatalf("mutation = %+v", m)
	}
	if !strings.Contains(m.UserAgent, "app/awssim-test") {
		t.Fatalf("user agent %q lacks the app id", m.UserAgent)
	}
	_, err = f.ec2.DeleteTrafficMirrorSession(c, &ec2.DeleteTrafficMirrorSessionInput{TrafficMirrorSessionId: dup.TrafficMirrorSession.TrafficMirrorSessionId})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ec2.DeleteTrafficMirrorSession(c, &ec2.DeleteTrafficMirrorSessionInput{TrafficMirrorSessionId: aws.String("tms-gone")})
	wantCode(t, err, CodeSessionNotFound)
	st = f.acct.Stats()
	if last := st.Mutations[len(st.Mutations)-1]; last.Action != "DeleteTrafficMirrorSession" || last.ErrorCode != CodeSessionNotFound {
		t.Fatalf("last mutation = %+v", last)
	}
	if st.SessionsCreated != 3 || st.SessionsDeleted != 1 {
		t.Fatalf("created %d deleted %d", st.SessionsCreated, st.SessionsDeleted)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t, Options{})
	_, eni := f.instance(t, "m5.large")
	in := f.createInput(eni, 1, "")
	in.DryRun = aws.Bool(true)
	_, err := f.ec2.CreateTrafficMirrorSession(ctx(t), in)
	wantCode(t, err, CodeDryRun)
	if len(f.acct.Sessions()) != 0 {
		t.Fatal("dry run created a session")
	}
}
