// Package lambdafn holds the handlers of apitap's Lambda functions. The
// mains under functions/ only read the environment, build the clients once
// per container and start the Lambda runtime; everything they do is here,
// where tests and local invocation reach it.
package lambdafn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/orchestrator"
	"github.com/apitap/apitap/internal/remedy"
	"github.com/apitap/apitap/internal/stackconfig"
)

// ConfigFromEnv reads the orchestrator's configuration from the variables
// the stack sets (internal/contract names them; README "Configuration").
func ConfigFromEnv(getenv func(string) string) (orchestrator.Config, error) {
	var errs []error
	c := orchestrator.Config{Config: inventory.Config{
		Mirror: mirror.Config{
			StackName: getenv(contract.EnvStackName),
			TargetID:  getenv(contract.EnvTargetID),
			FilterID:  getenv(contract.EnvFilterID),
			Conflict:  mirror.ConflictPolicy(getenv(contract.EnvConflict)),
		},
		MirrorNLBARN: getenv(contract.EnvMirrorNLBARN),
		VPCID:        getenv(contract.EnvVPCID),
		Region:       getenv(contract.EnvRegion),
		AccountID:    getenv(contract.EnvAccountID),
	}}
	for _, arn := range strings.Split(getenv(contract.EnvLBARNs), ",") {
		if arn = strings.TrimSpace(arn); arn != "" {
			c.LBARNs = append(c.LBARNs, arn)
		}
	}
	for _, kv := range strings.Split(getenv(contract.EnvLBTags), ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("%s: %q is not key=value", contract.EnvLBTags, kv))
			continue
		}
		if c.LBTags == nil {
			c.LBTags = map[string]string{}
		}
		c.LBTags[k] = v
	}
	if v := getenv(contract.EnvSessionNumber); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", contract.EnvSessionNumber, err))
		}
		c.Mirror.SessionNumber = int32(n)
	}
	if v := getenv(contract.EnvRate); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive number", contract.EnvRate, v))
		}
		c.MutationsPerSecond = f
	}
	if c.Region == "" {
		errs = append(errs, fmt.Errorf("%s is not set", contract.EnvRegion))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// AWSConfig loads the SDK configuration once per container: the standard
// retryer with more attempts (EC2 throttles per account and action) and
// apitap's user agent, so CloudTrail shows who made the calls.
func AWSConfig(ctx context.Context, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx, append([]func(*config.LoadOptions) error{
		config.WithAppID("apitap"),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 8
				o.MaxBackoff = 20 * time.Second
			})
		}),
	}, opts...)...)
}

// Clients are the AWS clients a function builds once per container; the
// orchestrator and the remedy engine share them.
type Clients struct {
	EC2         *ec2.Client
	ELBv2       *elbv2.Client
	Classic     *elb.Client
	AutoScaling *autoscaling.Client
}

// NewClients builds the clients from one configuration.
func NewClients(cfg aws.Config) Clients {
	return Clients{
		EC2:         ec2.NewFromConfig(cfg),
		ELBv2:       elbv2.NewFromConfig(cfg),
		Classic:     elb.NewFromConfig(cfg),
		AutoScaling: autoscaling.NewFromConfig(cfg),
	}
}

// Inventory is the inventory reader's view of the clients.
func (c Clients) Inventory() inventory.Clients {
	return inventory.Clients{EC2: c.EC2, ELBv2: c.ELBv2, Classic: c.Classic}
}

// Orchestrator is the orchestrator's view of the clients.
func (c Clients) Orchestrator() orchestrator.Clients {
	return orchestrator.Clients{EC2: c.EC2, ELBv2: c.ELBv2, Classic: c.Classic, AutoScaling: c.AutoScaling}
}

// RemedyConfigFromEnv reads the diagnosis and remediation settings the
// stack sets (internal/contract names them). ok is false when the function
// has none (a local run without them): it then diagnoses nothing.
func RemedyConfigFromEnv(getenv func(string) string) (cfg remedy.Config, table, topic string, ok bool, err error) {
	if getenv(contract.EnvTopicARN) == "" || getenv(contract.EnvDiagnoses) == "" {
		return cfg, "", "", false, nil
	}
	sc := stackconfig.Config{
		StackName: getenv(contract.EnvStackName), Account: getenv(contract.EnvAccountID), Region: getenv(contract.EnvRegion),
		Subnets: map[string]string{},
	}
	for _, t := range strings.Split(getenv(contract.EnvInstanceTypes), ",") {
		if t = strings.TrimSpace(t); t != "" {
			sc.InstanceTypes = append(sc.InstanceTypes, t)
		}
	}
	for _, kv := range strings.Split(getenv(contract.EnvSubnets), ",") {
		if id, zone, found := strings.Cut(strings.TrimSpace(kv), "="); found {
			sc.Subnets[id] = zone
		}
	}
	for _, r := range strings.Split(getenv(contract.EnvRemediate), ",") {
		if r = strings.TrimSpace(r); r != "" {
			if !slices.Contains(stackconfig.RemedyClasses, r) {
				return cfg, "", "", false, fmt.Errorf("%s: %q is not one of %v", contract.EnvRemediate, r, stackconfig.RemedyClasses)
			}
			sc.Remediate = append(sc.Remediate, r)
		}
	}
	for key, dst := range map[string]*int{contract.EnvCooldown: &sc.RemediationCooldownMinutes, contract.EnvUnhealthy: &sc.UnhealthyMinutes} {
		if v := getenv(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return cfg, "", "", false, fmt.Errorf("%s: %q is not a positive whole number of minutes", key, v)
			}
			*dst = n
		}
	}
	sc = sc.WithDefaults()
	return remedy.Config{Stack: sc, FleetGroup: getenv(contract.EnvFleetGroup), VolumeKey: getenv(contract.EnvVolumeKey),
		SnifferTG: getenv(contract.EnvSnifferTG), ReconcileFn: getenv(contract.EnvReconcileFn)}, getenv(contract.EnvDiagnoses), getenv(contract.EnvTopicARN), true, nil
}
