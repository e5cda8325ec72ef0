// Package moto_test runs apitap's real function binaries against moto's
// server, an AWS simulator apitap did not write: our own simulator
// (internal/awssim) is our idea of AWS, and a promise that holds only
// there is not kept. moto ignores tag filters on
// DescribeTrafficMirrorSessions, does not make ClientToken idempotent and
// answers a delete of an unknown session with success; apitap must keep
// every promise all the same.
//
// The world is built with moto's API: a VPC with instance, ip and Classic
// targets, a load balancer in another VPC, the stack's own NLB carrying the
// selector tag, and foreign sessions (untagged, another stack's, other tags
// only, our stack's tag on another stack's target). The functions then
// run as the stack runs them (-event FILE, the stack's environment,
// AWS_ENDPOINT_URL pointing at moto): a reconcile, a second one that
// changes nothing, an instance launch, an ip target registration, an
// instance stop and the teardown. Every foreign session must survive
// unchanged and the teardown must answer SUCCESS.
package moto_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/apitap/apitap/events"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/tests/testkit"
)

const (
	stack     = "apitap-moto"
	region    = "us-east-1"
	selectTag = "apitap"
	selectVal = "mirror"
)

// motoServer is a running moto_server.
type motoServer struct {
	url string
	log *bytes.Buffer
}

// startMoto starts moto's server on a free loopback port; the test stops it.
func startMoto(t *testing.T) *motoServer {
	t.Helper()
	bin := testkit.PyBin(t, "moto_server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	m := &motoServer{url: fmt.Sprintf("http://127.0.0.1:%d", port), log: &bytes.Buffer{}}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("moto_server output:\n%s", tail(m.log.String(), 60))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(m.url + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s within a minute: %v\n%s", m.url, err, m.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// world is what the test built in moto, and the handles to it.
type world struct {
	t      *testing.T
	moto   *motoServer
	ec2    *ec2.Client
	elbv2  *elbv2.Client
	elb    *elb.Client
	bins   map[string]string
	ami    string
	vpc    string
	subnet []string

	target, filter, otherTarget string
	mirrorNLB                   string
	shopALB, shopTG             string
	apiNLB, apiTG               string
	elsewhere                   string
	legacy                      string // Classic ARN
	i1, i2, i4                  string
	e1, e2, e3, e4              string
	foreign                     map[string]ec2types.TrafficMirrorSession
}

func (w *world) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) awsConfig() aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(w.moto.url),
	}
}

func bg() context.Context { return context.Background() }

func (w *world) subnetIn(vpc, cidr, az string) string {
	out, err := w.ec2.CreateSubnet(bg(), &ec2.CreateSubnetInput{VpcId: aws.String(vpc), CidrBlock: aws.String(cidr), AvailabilityZone: aws.String(az)})
	w.must(err)
	return aws.ToString(out.Subnet.SubnetId)
}

// instance launches one instance and returns its id and primary ENI.
func (w *world) instance(subnet, typ string) (string, string) {
	w.t.Helper()
	out, err := w.ec2.RunInstances(bg(), &ec2.RunInstancesInput{ImageId: aws.String(w.ami), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		InstanceType: ec2types.InstanceType(typ), SubnetId: aws.String(subnet)})
	w.must(err)
	in := out.Instances[0]
	id := aws.ToString(in.InstanceId)
	d, err := w.ec2.DescribeInstances(bg(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	w.must(err)
	for _, ni := range d.Reservations[0].Instances[0].NetworkInterfaces {
		if ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
			return id, aws.ToString(ni.NetworkInterfaceId)
		}
	}
	w.t.Fatalf("instance %s has no primary network interface", id)
	return "", ""
}

// ipENI makes a network interface of its own (an ECS task's) and returns
// its id and private IP.
func (w *world) ipENI(subnet string) (string, string) {
	w.t.Helper()
	out, err := w.ec2.CreateNetworkInterface(bg(), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(subnet)})
	w.must(err)
	return aws.ToString(out.NetworkInterface.NetworkInterfaceId), aws.ToString(out.NetworkInterface.PrivateIpAddress)
}

func (w *world) loadBalancer(name string, typ elbv2types.LoadBalancerTypeEnum, subnets []string, tags map[string]string) string {
	w.t.Helper()
	in := &elbv2.CreateLoadBalancerInput{Name: aws.String(name), Type: typ, Subnets: subnets, Scheme: elbv2types.LoadBalancerSchemeEnumInternal}
	for k, v := range tags {
		in.Tags = append(in.Tags, elbv2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := w.elbv2.CreateLoadBalancer(bg(), in)
	w.must(err)
	return aws.ToString(out.LoadBalancers[0].LoadBalancerArn)
}

// targetGroup makes a target group of kind on lb (through a listener) and
// registers ids.
func (w *world) targetGroup(name, vpc, lb string, kind elbv2types.TargetTypeEnum, proto elbv2types.ProtocolEnum, ids ...string) string {
	w.t.Helper()
	out, err := w.elbv2.CreateTargetGroup(bg(), &elbv2.CreateTargetGroupInput{Name: aws.String(name), VpcId: aws.String(vpc),
		TargetType: kind, Protocol: proto, Port: aws.Int32(8080)})
	w.must(err)
	tg := aws.ToString(out.TargetGroups[0].TargetGroupArn)
	_, err = w.elbv2.CreateListener(bg(), &elbv2.CreateListenerInput{LoadBalancerArn: aws.String(lb), Protocol: proto, Port: aws.Int32(8080),
		DefaultActions: []elbv2types.Action{{Type: elbv2types.ActionTypeEnumForward, TargetGroupArn: aws.String(tg)}}})
	w.must(err)
	w.register(tg, ids...)
	return tg
}

func (w *world) register(tg string, ids ...string) {
	w.t.Helper()
	if len(ids) == 0 {
		return
	}
	var ts []elbv2types.TargetDescription
	for _, id := range ids {
		ts = append(ts, elbv2types.TargetDescription{Id: aws.String(id), Port: aws.Int32(8080)})
	}
	_, err := w.elbv2.RegisterTargets(bg(), &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: ts})
	w.must(err)
}

func (w *world) session(eni, target string, number int32, tags map[string]string) {
	w.t.Helper()
	in := &ec2.CreateTrafficMirrorSessionInput{NetworkInterfaceId: aws.String(eni), TrafficMirrorTargetId: aws.String(target),
		TrafficMirrorFilterId: aws.String(w.filter), SessionNumber: aws.Int32(number), VirtualNetworkId: aws.Int32(77)}
	if len(tags) > 0 {
		spec := ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeTrafficMirrorSession}
		for k, v := range tags {
			spec.Tags = append(spec.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		in.TagSpecifications = []ec2types.TagSpecification{spec}
	}
	_, err := w.ec2.CreateTrafficMirrorSession(bg(), in)
	w.must(err)
}

func build(t *testing.T, m *motoServer) *world {
	w := &world{t: t, moto: m}
	cfg := w.awsConfig()
	w.ec2, w.elbv2, w.elb = ec2.NewFromConfig(cfg), elbv2.NewFromConfig(cfg), elb.NewFromConfig(cfg)

	imgs, err := w.ec2.DescribeImages(bg(), &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	w.must(err)
	if len(imgs.Images) == 0 {
		t.Fatal("moto offers no image")
	}
	w.ami = aws.ToString(imgs.Images[0].ImageId)

	vpc, err := w.ec2.CreateVpc(bg(), &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16")})
	w.must(err)
	w.vpc = aws.ToString(vpc.Vpc.VpcId)
	w.subnet = []string{w.subnetIn(w.vpc, "10.20.1.0/24", region+"a"), w.subnetIn(w.vpc, "10.20.2.0/24", region+"b")}
	other, err := w.ec2.CreateVpc(bg(), &ec2.CreateVpcInput{CidrBlock: aws.String("10.30.0.0/16")})
	w.must(err)
	otherVPC := aws.ToString(other.Vpc.VpcId)
	otherSubnets := []string{w.subnetIn(otherVPC, "10.30.1.0/24", region+"a"), w.subnetIn(otherVPC, "10.30.2.0/24", region+"b")}

	// The stack's mirror target: its own NLB, carrying the selector tag
	// (as a careless tag selection would pick it), and its filter.
	// moto has no CreateTrafficMirrorFilterRule: the filter has no rules.
	w.mirrorNLB = w.loadBalancer("apitap-moto-mirror", elbv2types.LoadBalancerTypeEnumNetwork, w.subnet, map[string]string{selectTag: selectVal})
	tgt, err := w.ec2.CreateTrafficMirrorTarget(bg(), &ec2.CreateTrafficMirrorTargetInput{NetworkLoadBalancerArn: aws.String(w.mirrorNLB)})
	w.must(err)
	w.target = aws.ToString(tgt.TrafficMirrorTarget.TrafficMirrorTargetId)
	flt, err := w.ec2.CreateTrafficMirrorFilter(bg(), &ec2.CreateTrafficMirrorFilterInput{Description: aws.String("apitap moto test")})
	w.must(err)
	w.filter = aws.ToString(flt.TrafficMirrorFilter.TrafficMirrorFilterId)
	otherNLB := w.loadBalancer("other-mirror", elbv2types.LoadBalancerTypeEnumNetwork, w.subnet, nil)
	ot, err := w.ec2.CreateTrafficMirrorTarget(bg(), &ec2.CreateTrafficMirrorTargetInput{NetworkLoadBalancerArn: aws.String(otherNLB)})
	w.must(err)
	w.otherTarget = aws.ToString(ot.TrafficMirrorTarget.TrafficMirrorTargetId)

	// Instance targets behind an ALB, an ip target behind an NLB, an
	// instance behind a Classic load balancer (selected by tag), and a
	// tagged ALB in another VPC.
	w.i1, w.e1 = w.instance(w.subnet[0], "m5.large")
	w.i2, w.e2 = w.instance(w.subnet[1], "m5.large")
	w.e3, _ = w.ipENI(w.subnet[0])
	w.i4, w.e4 = w.instance(w.subnet[1], "c5.large")
	_, xENI := w.instance(w.subnet[0], "m5.large") // no target
	_, yENI := w.instance(w.subnet[1], "m5.large") // no target

	w.shopALB = w.loadBalancer("shop", elbv2types.LoadBalancerTypeEnumApplication, w.subnet, nil)
	w.shopTG = w.targetGroup("shop-instances", w.vpc, w.shopALB, elbv2types.TargetTypeEnumInstance, elbv2types.ProtocolEnumHttp, w.i1, w.i2)
	w.apiNLB = w.loadBalancer("api", elbv2types.LoadBalancerTypeEnumNetwork, w.subnet, nil)
	e3, err := w.ec2.DescribeNetworkInterfaces(bg(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{w.e3}})
	w.must(err)
	w.apiTG = w.targetGroup("api-ips", w.vpc, w.apiNLB, elbv2types.TargetTypeEnumIp, elbv2types.ProtocolEnumTcp,
		aws.ToString(e3.NetworkInterfaces[0].PrivateIpAddress))
	w.elsewhere = w.loadBalancer("elsewhere", elbv2types.LoadBalancerTypeEnumApplication, otherSubnets, map[string]string{selectTag: selectVal})
	_, err = w.elb.CreateLoadBalancer(bg(), &elb.CreateLoadBalancerInput{LoadBalancerName: aws.String("legacy"), Subnets: w.subnet[:1],
		Scheme: aws.String("internal"), Tags: []elbtypes.Tag{{Key: aws.String(selectTag), Value: aws.String(selectVal)}},
		Listeners: []elbtypes.Listener{{Protocol: aws.String("HTTP"), LoadBalancerPort: 80, InstanceProtocol: aws.String("HTTP"), InstancePort: aws.Int32(8080)}}})
	w.must(err)
	_, err = w.elb.RegisterInstancesWithLoadBalancer(bg(), &elb.RegisterInstancesWithLoadBalancerInput{LoadBalancerName: aws.String("legacy"),
		Instances: []elbtypes.Instance{{InstanceId: aws.String(w.i4)}}})
	w.must(err)
	w.legacy = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/legacy", region, w.account())

	// Foreign sessions. On i2, one of another stack's: i2 is a conflict,
	// skipped. The rest on instances that are no targets.
	w.session(w.e2, w.otherTarget, 5, map[string]string{contract.TagStack: "other-stack"})
	w.session(xENI, w.target, 1, nil)
	w.session(xENI, w.otherTarget, 2, map[string]string{contract.TagStack: "other-stack", contract.TagInstance: w.i1})
	w.session(yENI, w.target, 1, map[string]string{"owner": "security-team"})
	w.session(yENI, w.otherTarget, 2, map[string]string{contract.TagStack: stack, contract.TagInstance: w.i1, contract.TagLB: w.shopALB})
	w.foreign = map[string]ec2types.TrafficMirrorSession{}
	for _, s := range w.sessions() {
		w.foreign[aws.ToString(s.TrafficMirrorSessionId)] = s
	}
	if len(w.foreign) != 5 {
		t.Fatalf("setup: %d foreign sessions, want 5", len(w.foreign))
	}
	return w
}

// account is moto's account id, from a resource's owner.
func (w *world) account() string {
	out, err := w.ec2.DescribeTrafficMirrorTargets(bg(), &ec2.DescribeTrafficMirrorTargetsInput{TrafficMirrorTargetIds: []string{w.target}})
	w.must(err)
	return aws.ToString(out.TrafficMirrorTargets[0].OwnerId)
}

func (w *world) sessions() []ec2types.TrafficMirrorSession {
	w.t.Helper()
	out, err := w.ec2.DescribeTrafficMirrorSessions(bg(), &ec2.DescribeTrafficMirrorSessionsInput{})
	w.must(err)
	return out.TrafficMirrorSessions
}

func tagsOf(s ec2types.TrafficMirrorSession) map[string]string {
	m := map[string]string{}
	for _, t := range s.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// ours maps each ENI to the load balancer of our session on it.
func (w *world) ours() map[string][]string {
	out := map[string][]string{}
	for _, s := range w.sessions() {
		tags := tagsOf(s)
		if tags[contract.TagStack] == stack && aws.ToString(s.TrafficMirrorTargetId) == w.target {
			eni := aws.ToString(s.NetworkInterfaceId)
			out[eni] = append(out[eni], tags[contract.TagLB])
		}
	}
	return out
}

// check fails unless our sessions are exactly want (ENI -> load balancer)
// and every foreign session is still there, unchanged.
func (w *world) check(step string, want map[string]string) {
	w.t.Helper()
	got := w.ours()
	for eni, lb := range want {
		if lbs := got[eni]; len(lbs) != 1 || lbs[0] != lb {
			w.t.Errorf("%s: %s has sessions of ours for %v, want one for %s", step, eni, lbs, lb)
		}
	}
	for eni, lbs := range got {
		if _, ok := want[eni]; !ok {
			w.t.Errorf("%s: %s is not to be mirrored, has sessions of ours for %v", step, eni, lbs)
		}
	}
	now := map[string]ec2types.TrafficMirrorSession{}
	for _, s := range w.sessions() {
		now[aws.ToString(s.TrafficMirrorSessionId)] = s
	}
	for id, was := range w.foreign {
		s, ok := now[id]
		switch {
		case !ok:
			w.t.Errorf("%s: foreign session %s (tags %v) was deleted", step, id, tagsOf(was))
		case aws.ToString(s.NetworkInterfaceId) != aws.ToString(was.NetworkInterfaceId) ||
			aws.ToString(s.TrafficMirrorTargetId) != aws.ToString(was.TrafficMirrorTargetId) ||
			aws.ToInt32(s.SessionNumber) != aws.ToInt32(was.SessionNumber) || !maps.Equal(tagsOf(s), tagsOf(was)):
			w.t.Errorf("%s: foreign session %s changed", step, id)
		}
	}
}

var buildOnce struct {
	sync.Once
	bins map[string]string
	err  error
}

// binaries builds the four function binaries for this machine, once.
func binaries(t *testing.T) map[string]string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "apitap-functions-")
		if err != nil {
			buildOnce.err = err
			return
		}
		var pkgs []string
		for _, fn := range contract.Functions {
			pkgs = append(pkgs, "./functions/"+fn)
		}
		paths, err := testkit.Build(dir, pkgs...)
		buildOnce.bins, buildOnce.err = map[string]string{}, err
		for i, fn := range contract.Functions {
			if err == nil {
				buildOnce.bins[fn] = paths[i]
			}
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.bins
}

// env is the functions' environment as the stack sets it, pointed at moto.
func (w *world) env() []string {
	return []string{
		contract.EnvStackName + "=" + stack,
		contract.EnvTargetID + "=" + w.target,
		contract.EnvFilterID + "=" + w.filter,
		contract.EnvMirrorNLBARN + "=" + w.mirrorNLB,
		contract.EnvVPCID + "=" + w.vpc,
		contract.EnvLBARNs + "=" + w.shopALB + "," + w.apiNLB,
		contract.EnvLBTags + "=" + selectTag + "=" + selectVal,
		contract.EnvSessionNumber + "=1",
		contract.EnvConflict + "=skip",
		contract.EnvAccountID + "=" + w.account(),
		contract.EnvRegion + "=" + region,
		"AWS_ENDPOINT_URL=" + w.moto.url,
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"HOME=" + w.t.TempDir(), "PATH=" + os.Getenv("PATH"),
	}
}

// invoke runs a function binary on an event and returns its invocation
// summary.
func (w *world) invoke(fn string, event []byte) map[string]any {
	w.t.Helper()
	file := filepath.Join(w.t.TempDir(), "event.json")
	w.must(os.WriteFile(file, event, 0o644))
	ctx, cancel := context.WithTimeout(bg(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binaries(w.t)[fn], "-event", file, "-timeout", "2m")
	cmd.Env = w.env()
	var stderr, stdout bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, &stdout
	err := cmd.Run()
	var summary map[string]any
	sc := bufio.NewScanner(&stderr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "invocation summary" {
			summary = m
		}
	}
	if err != nil || summary == nil {
		w.t.Fatalf("%s: %v\n%s", fn, err, strings.Join(lines, "\n"))
	}
	if summary["errors"] != 0.0 || summary["refused"] != 0.0 {
		w.t.Errorf("%s: %v errors, %v refused deletes: %v", fn, summary["errors"], summary["refused"], summary["details"])
	}
	return summary
}

// sample is a sample event with fields replaced.
func sample(t *testing.T, name string, edit func(ev map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(events.Sample(name), &ev); err != nil {
		t.Fatal(err)
	}
	edit(ev)
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stateEvent(t *testing.T, name, instance string) []byte {
	return sample(t, name, func(ev map[string]any) {
		ev["detail"].(map[string]any)["instance-id"] = instance
	})
}

func reasons(summary map[string]any) string {
	var b strings.Builder
	details, _ := summary["details"].([]any)
	for _, d := range details {
		m, _ := d.(map[string]any)
		fmt.Fprintf(&b, "%v %v %v: %v\n", m["action"], m["lb"], m["eni"], m["reason"])
	}
	return b.String()
}

func TestFunctionsAgainstMoto(t *testing.T) {
	w := build(t, startMoto(t))
	scheduled := events.Sample("scheduled-event.json")

	// 1. The first reconcile: i1 (shop), the ip target (api) and i4
	// (legacy, by tag). i2 carries another stack's session: skipped. The
	// ALB in the other VPC and the stack's own NLB are tagged but never
	// selected.
	s := w.invoke(contract.FnReconcile, scheduled)
	want := map[string]string{w.e1: w.shopALB, w.e3: w.apiNLB, w.e4: w.legacy}
	w.check("first reconcile", want)
	why := reasons(s)
	for _, text := range []string{
		w.elsewhere + " <nil>: load balancer is in ",
		w.mirrorNLB + " <nil>: the stack's own load balancer",
		"conflict " + w.shopALB + " " + w.e2 + ": foreign mirror sessions",
	} {
		if !strings.Contains(why, text) {
			t.Errorf("first reconcile does not report %q:\n%s", text, why)
		}
	}

	// 2. A second reconcile changes nothing.
	s = w.invoke(contract.FnReconcile, scheduled)
	if s["created"] != 0.0 || s["deleted"] != 0.0 || s["kept"] != 3.0 {
		t.Errorf("second reconcile: created %v, deleted %v, kept %v; want 0, 0, 3", s["created"], s["deleted"], s["kept"])
	}
	w.check("second reconcile", want)

	// 3. An instance launched into the shop's target group.
	i5, e5 := w.instance(w.subnet[0], "m5.large")
	w.register(w.shopTG, i5)
	w.invoke(contract.FnInstanceEvents, stateEvent(t, "ec2-state-running.json", i5))
	want[e5] = w.shopALB
	w.check("launch", want)

	// 4. An ip target registered with the api's target group
	// (CloudTrail RegisterTargets).
	e6, ip6 := w.ipENI(w.subnet[1])
	w.register(w.apiTG, ip6)
	w.invoke(contract.FnInstanceEvents, sample(t, "cloudtrail-elbv2-register-targets-ip.json", func(ev map[string]any) {
		ev["detail"].(map[string]any)["requestParameters"] = map[string]any{
			"targetGroupArn": w.apiTG, "targets": []any{map[string]any{"id": ip6, "port": 8080}},
		}
	}))
	want[e6] = w.apiNLB
	w.check("registration", want)

	// 5. i1 stopped: its session goes, and nothing else, although moto
	// answers the tag-filtered listing with every session on the target
	// and a foreign session on another target carries i1's tag.
	_, err := w.ec2.StopInstances(bg(), &ec2.StopInstancesInput{InstanceIds: []string{w.i1}})
	w.must(err)
	w.invoke(contract.FnInstanceEvents, stateEvent(t, "ec2-state-stopped.json", w.i1))
	delete(want, w.e1)
	w.check("stop", want)

	// 6. The teardown deletes every session of ours, none of the others,
	// and answers SUCCESS.
	var mu sync.Mutex
	var answers []map[string]any
	cfn := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		answers = append(answers, m)
		mu.Unlock()
	}))
	defer cfn.Close()
	s = w.invoke(contract.FnTeardown, sample(t, "cfn-custom-resource-delete.json", func(ev map[string]any) {
		ev["ResponseURL"] = cfn.URL + "/response"
	}))
	w.check("teardown", map[string]string{})
	if len(answers) != 1 || answers[0]["Status"] != "SUCCESS" {
		t.Errorf("teardown answered CloudFormation %v, want one SUCCESS", answers)
	}
	if s["deleted"] != 4.0 {
		t.Errorf("teardown deleted %v sessions, want 4", s["deleted"])
	}
	if t.Failed() {
		t.Logf("sessions at the end: %d", len(w.sessions()))
	}
}
