// Package sampleworld builds the simulated AWS account that the sample
// events (events/*.json, ids listed in events/README.md) describe: stack
// apitap's mirror target and filter, the ALB web-alb with the instance
// target group web-instances, the NLB api-nlb with the ip target group
// api-ips, the Classic load balancer legacy-clb and instances
// i-0abc0000000000001 to …6.
//
// The simulated account makes up its own ids, so a World maps each id the
// samples use to the id it created, and Rewrite turns a sample into an
// event about this world. Both the local invocation command (tests/invoke)
// and the handler tests (internal/lambdafn) use it.
package sampleworld

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/orchestrator"
	"github.com/apitap/apitap/internal/stackconfig"
)

// Zones are the availability zones the world's subnets are in.
var Zones = []string{"us-east-1a", "us-east-1b"}

// OfferedInstanceTypes are the instance types each of Zones offers: the
// Graviton types the fleet may run on and the applications' m5.large.
var OfferedInstanceTypes = []string{"c7g.large", "c6g.large", "c6gn.large", "m7g.large", "m6g.large", "m5.large"}

// TrailName is the world's one trail.
const TrailName = "management"

// StackName is the stack the samples belong to.
const StackName = "apitap"

// Ids and names the samples use (events/README.md).
const (
	SampleVPC          = "vpc-0abc0000000000001"
	SampleTarget       = "tmt-0abc0000000000001"
	SampleFilter       = "tmf-0abc0000000000001"
	SampleFilterUpdate = "tmf-0abc0000000000002" // the filter of the Update request
	SampleALB          = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-alb/50dc6c495c0c9188"
	SampleNLB          = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/api-nlb/3a1f5c9b7d2e4f60"
	SampleWebInstances = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-instances/73e2d6bc24d8a067"
	SampleAPIIPs       = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api-ips/943f017f100becff"
	ClassicName        = "legacy-clb"
	SampleIP11         = "10.0.1.25" // ip target on eni-0abc0000000000011
	SampleIP12         = "10.0.2.47" // ip target on eni-0abc0000000000012
	// ClassicTag selects legacy-clb by tag (APITAP_LB_TAGS); web-alb and
	// api-nlb are selected by ARN, so both ways of selecting are exercised.
	ClassicTagKey, ClassicTagValue = "apitap:mirror", "true"
)

// SampleInstance is the sample id of instance n (1…6): i-0abc000000000000n.
func SampleInstance(n int) string { return fmt.Sprintf("i-0abc%013d", n) }

// SampleENI is the sample-style id of ENI n: the primary ENI of instance n
// (1…6), or an ip target's ENI (11 holds 10.0.1.25, 12 holds 10.0.2.47).
func SampleENI(n int) string { return fmt.Sprintf("eni-0abc%013d", n) }

// Pair is one sample id and the id the simulated account gave it.
type Pair struct {
	Sample, World string
	What          string // what it is, for printing
}

// World is the simulated account of the samples.
type World struct {
	Acct  *awssim.Account
	Clock *awssim.ManualClock

	VPC, MirrorNLB, Target, Filter string
	// ALB, NLB and Classic are the ARNs of web-alb, api-nlb and legacy-clb
	// (Classic in the form the functions' configuration uses).
	ALB, NLB, Classic string
	// WebInstances and APIIPs are the target groups' ARNs.
	WebInstances, APIIPs string
	// ClassicInstances are legacy-clb's instances in the steady state.
	ClassicInstances []string
	// Subnets are the VPC's subnets, one in each of Zones.
	Subnets []string
	// TrailARN is the trail "management", logging every management event.
	TrailARN string

	pairs   []Pair
	toWorld map[string]string
	toSamp  map[string]string
	lbNames map[string]string
}

// Start is when the world's clock starts: shortly before the samples'
// times.
var Start = time.Date(2026, 3, 14, 8, 40, 0, 0, time.UTC)

// New builds the world in its steady state, before any sample's change:
//   - instances 1, 2, 3 and 5 (m5.large, running) are targets of
//     web-instances (Auto Scaling group web-asg registers its instances);
//   - instances 1 and 6 are registered with legacy-clb;
//   - instance 4 never launched: it is terminated;
//   - ENIs 11 and 12 (no instance) hold the ip targets of api-ips.
//
// Around them, what the operator commands read (preflight, status):
//   - subnets in Zones; each zone offers OfferedInstanceTypes;
//   - the role AWSServiceRoleForAutoScaling (Acct.DeleteRole to remove);
//   - Lambda's defaults: 1,000 concurrent executions, all unreserved;
//   - the trail "management", logging management events (read and write);
//   - the traffic mirror sessions quota, 10,000.
//
// No session exists yet. Close it when done.
func New() (*World, error) { return NewWith(awssim.Options{}) }

// NewWith is New on an account with opts (its strictness, say); the seed
// and the clock are the world's.
func NewWith(opts awssim.Options) (*World, error) {
	mc := awssim.NewManualClock(Start)
	opts.Seed, opts.Clock = 1, mc
	a := awssim.New(opts)
	w := &World{Acct: a, Clock: mc, toWorld: map[string]string{}, toSamp: map[string]string{}, lbNames: map[string]string{}}
	if err := w.build(); err != nil {
		a.Close()
		return nil, err
	}
	return w, nil
}

func (w *World) build() error {
	a := w.Acct
	var err error
	w.VPC = a.AddVPC()
	w.add(SampleVPC, w.VPC, "VPC of the stack")
	if w.MirrorNLB, err = a.AddLoadBalancer("network", w.VPC, "apitap-mirror", nil); err != nil {
		return err
	}
	if w.Target, err = a.AddMirrorTarget(w.MirrorNLB); err != nil {
		return err
	}
	w.add(SampleTarget, w.Target, "mirror target (NLB apitap-mirror)")
	w.Filter = a.AddMirrorFilter()
	w.add(SampleFilter, w.Filter, "mirror filter")
	w.add(SampleFilterUpdate, a.AddMirrorFilter(), "mirror filter after the update")

	inst := map[int]string{}
	for n := 1; n <= 6; n++ {
		id, eni, err := a.AddInstance(w.VPC, "m5.large")
		if err != nil {
			return err
		}
		inst[n] = id
		what := fmt.Sprintf("instance %d", n)
		if n == 4 {
			what += ", terminated: its launch failed"
		}
		w.add(SampleInstance(n), id, what)
		w.add(SampleENI(n), eni, fmt.Sprintf("primary ENI of instance %d", n))
	}
	var ips []string
	for _, t := range []struct {
		n  int
		ip string
	}{{11, SampleIP11}, {12, SampleIP12}} {
		eni, ip, err := a.AddENI(w.VPC)
		if err != nil {
			return err
		}
		w.add(SampleENI(t.n), eni, "ENI of ip target "+t.ip)
		w.add(t.ip, ip, "ip target")
		ips = append(ips, ip)
	}

	if w.ALB, err = a.AddLoadBalancer("application", w.VPC, "web-alb", nil); err != nil {
		return err
	}
	w.add(SampleALB, w.ALB, "ALB web-alb")
	if w.WebInstances, err = a.AddTargetGroup(w.ALB, "instance"); err != nil {
		return err
	}
	w.add(SampleWebInstances, w.WebInstances, "target group web-instances (instance)")
	if err := a.Register(w.WebInstances, inst[1], inst[2], inst[3], inst[5]); err != nil {
		return err
	}
	if w.NLB, err = a.AddLoadBalancer("network", w.VPC, "api-nlb", nil); err != nil {
		return err
	}
	w.add(SampleNLB, w.NLB, "NLB api-nlb")
	if w.APIIPs, err = a.AddTargetGroup(w.NLB, "ip"); err != nil {
		return err
	}
	w.add(SampleAPIIPs, w.APIIPs, "target group api-ips (ip)")
	if err := a.Register(w.APIIPs, ips...); err != nil {
		return err
	}
	w.ClassicInstances = []string{inst[1], inst[6]}
	if err := a.AddClassicLB(ClassicName, w.VPC, w.ClassicInstances, map[string]string{ClassicTagKey: ClassicTagValue}); err != nil {
		return err
	}
	w.Classic = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/%s", awssim.DefaultRegion, awssim.DefaultAccountID, ClassicName)
	if err := a.TerminateInstance(inst[4]); err != nil {
		return err
	}
	w.lbNames[w.ALB], w.lbNames[w.NLB], w.lbNames[w.Classic] = "web-alb", "api-nlb", ClassicName
	return w.buildAccount()
}

// buildAccount sets what the operator commands check beyond the load
// balancers: zones, subnets and offerings, the Auto Scaling service-linked
// role and a trail. Lambda's settings and the sessions quota are the
// account's defaults.
func (w *World) buildAccount() error {
	a := w.Acct
	for _, z := range Zones {
		id, err := a.AddSubnet(w.VPC, z)
		if err != nil {
			return err
		}
		w.Subnets = append(w.Subnets, id)
		if err := a.SetInstanceTypeOfferings(z, OfferedInstanceTypes...); err != nil {
			return err
		}
	}
	if err := a.AddRole(awssim.AutoScalingServiceLinkedRole); err != nil {
		return err
	}
	arn, err := a.PutTrail(awssim.Trail{Name: TrailName, S3BucketName: "apitap-trail", IsMultiRegionTrail: true, IsLogging: true,
		EventSelectors: []awssim.EventSelector{{ReadWriteType: "All", IncludeManagementEvents: true}}})
	w.TrailARN = arn
	return err
}

func (w *World) add(sample, world, what string) {
	w.pairs = append(w.pairs, Pair{Sample: sample, World: world, What: what})
	w.toWorld[sample] = world
	w.toSamp[world] = sample
}

// Close stops the simulated account.
func (w *World) Close() { w.Acct.Close() }

// Mapping lists every sample id and the world's id for it, in the order
// they were made.
func (w *World) Mapping() []Pair { return append([]Pair(nil), w.pairs...) }

// ID returns the world's id for a sample id; it panics on an id the world
// does not have (a typo in a test or scenario).
func (w *World) ID(sample string) string {
	id, ok := w.toWorld[sample]
	if !ok {
		panic("sampleworld: no world id for " + sample)
	}
	return id
}

// Lookup returns the world's id for a sample id, and whether there is one.
func (w *World) Lookup(sample string) (string, bool) {
	id, ok := w.toWorld[sample]
	return id, ok
}

// SampleID returns the sample id of a world id, "" when there is none.
func (w *World) SampleID(world string) string { return w.toSamp[world] }

// LBName returns the name of a selectable load balancer's ARN.
func (w *World) LBName(arn string) string { return w.lbNames[arn] }

// Rewrite replaces every sample id in raw by the world's id. Longer ids
// are replaced first, so that no id is taken for the start of another.
func (w *World) Rewrite(raw []byte) []byte {
	pairs := w.Mapping()
	sort.SliceStable(pairs, func(i, j int) bool { return len(pairs[i].Sample) > len(pairs[j].Sample) })
	var args []string
	for _, p := range pairs {
		args = append(args, p.Sample, p.World)
	}
	return []byte(strings.NewReplacer(args...).Replace(string(raw)))
}

// Env is the functions' environment in this world, as the stack sets it:
// web-alb and api-nlb selected by ARN, legacy-clb by its tag.
func (w *World) Env() map[string]string {
	return map[string]string{
		contract.EnvStackName:    StackName,
		contract.EnvTargetID:     w.Target,
		contract.EnvFilterID:     w.Filter,
		contract.EnvMirrorNLBARN: w.MirrorNLB,
		contract.EnvVPCID:        w.VPC,
		contract.EnvLBARNs:       w.ALB + "," + w.NLB,
		contract.EnvLBTags:       ClassicTagKey + "=" + ClassicTagValue,
		contract.EnvAccountID:    awssim.DefaultAccountID,
		contract.EnvRegion:       awssim.DefaultRegion,
	}
}

// StackConfig is the stack's configuration (cdk.json) that deploys into
// this world: the selection of Env, the world's VPC and subnets, the
// default Graviton types (offered in every zone), a plaintext Kafka.
func (w *World) StackConfig() stackconfig.Config {
	subnets := map[string]string{}
	for i, id := range w.Subnets {
		subnets[id] = Zones[i%len(Zones)]
	}
	return stackconfig.Config{
		StackName: StackName, Account: awssim.DefaultAccountID, Region: awssim.DefaultRegion,
		VPCID: w.VPC, VPCCIDRs: []string{"10.1.0.0/16"}, Subnets: subnets,
		LoadBalancerARNs: []string{w.ALB, w.NLB},
		LoadBalancerTags: map[string]string{ClassicTagKey: ClassicTagValue},
		KafkaBrokers:     []string{"b-1.kafka.internal:9092", "b-2.kafka.internal:9092"},
	}.WithDefaults()
}

// Clients are real SDK clients pointed at the account, as a cold Lambda
// container builds them. The retryer backs off in milliseconds, so that
// injected faults do not slow tests down.
func (w *World) Clients() orchestrator.Clients {
	cfg := w.Acct.Config()
	cfg.Retryer = awssim.QuickRetryer(3)
	return orchestrator.Clients{EC2: ec2.NewFromConfig(cfg), ELBv2: elbv2.NewFromConfig(cfg), Classic: elb.NewFromConfig(cfg),
		AutoScaling: autoscaling.NewFromConfig(cfg)}
}

// Grace is how far Mirror moves the clock after mirroring: past the
// orchestrator's protection of recently created sessions, as when the
// sample's change happens a while after the last reconcile.
const Grace = 10 * time.Minute

// Mirror brings the account to what an earlier full reconcile with cfg
// would have left (a separate container: its own orchestrator), then moves
// the clock on by Grace.
func (w *World) Mirror(ctx context.Context, cfg orchestrator.Config) error {
	o, err := orchestrator.New(cfg, w.Clients(), w.Clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return fmt.Errorf("mirroring the world: %w", err)
	}
	res := o.Reconcile(ctx, time.Time{})
	if err := res.Err(); err != nil {
		return fmt.Errorf("mirroring the world: %w", err)
	}
	w.Clock.Advance(Grace)
	return nil
}

// Ours returns the sessions owned by the stack (its tag, its target), by
// ENI.
func (w *World) Ours() map[string]awssim.Session {
	out := map[string]awssim.Session{}
	for _, s := range w.Acct.Sessions() {
		if s.Tags[contract.TagStack] == StackName && s.Target == w.Target {
			out[s.ENI] = s
		}
	}
	return out
}

// Describe is one line about a session, with the sample ids of its ENI
// and load balancer, for printing.
func (w *World) Describe(s awssim.Session) string {
	eni := s.ENI
	if sample := w.SampleID(s.ENI); sample != "" {
		eni += " (" + sample + ")"
	}
	lb := s.Tags[contract.TagLB]
	if n := w.LBName(lb); n != "" {
		lb = n
	}
	owner := s.Tags[contract.TagStack]
	if owner == "" {
		owner = "(none: foreign)"
	}
	return fmt.Sprintf("%s on %s number=%d vni=%d lb=%s stack=%s", s.ID, eni, s.Number, s.VNI, lb, owner)
}
