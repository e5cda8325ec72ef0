package orchestrator

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/sessionwriter"
)

// Config is what the stack tells the functions (through environment
// variables, see lambdafn.ConfigFromEnv): what to read (the stack, its
// mirror target, the selection) and how to write.
type Config struct {
	inventory.Config
	// MutationsPerSecond limits create and delete calls. Default 5.
	MutationsPerSecond float64
	// Margin is how long before the invocation's deadline no new work is
	// started, leaving time to log the summary. Default 10s.
	Margin time.Duration
	// BackoffBase and BackoffMax bound how long an ENI whose create failed
	// for a lasting reason waits before it is tried again. Default 10m, 6h.
	BackoffBase, BackoffMax time.Duration
	// Settle is how long Describe is given to catch up with a create or a
	// delete: before a create with a used token is given up for the next
	// generation, and between the teardown's listings. Default 5s.
	Settle time.Duration
	// TargetLooks is how many times an ECS service's task that is RUNNING
	// but no target of a selected load balancer is looked at within one
	// invocation, TargetLookDelay the wait before the second look (doubling
	// after): ECS may register the task after it publishes the event
	// (docs/aws.md, "EventBridge events"). Default 3 looks, 10s: at 0, 10
	// and 30 seconds. A standalone task is looked at once.
	TargetLooks     int
	TargetLookDelay time.Duration
}

func (c *Config) setDefaults() {
	c.Mirror = c.Mirror.WithDefaults()
	if c.MutationsPerSecond <= 0 {
		c.MutationsPerSecond = sessionwriter.DefaultMutationsPerSecond
	}
	if c.Margin <= 0 {
		c.Margin = 10 * time.Second
	}
	if c.Settle <= 0 {
		c.Settle = sessionwriter.DefaultSettle
	}
	if c.TargetLooks <= 0 {
		c.TargetLooks = DefaultTargetLooks
	}
	if c.TargetLookDelay <= 0 {
		c.TargetLookDelay = DefaultTargetLookDelay
	}
}

// Defaults of Config.TargetLooks and TargetLookDelay.
const (
	DefaultTargetLooks     = 3
	DefaultTargetLookDelay = 10 * time.Second
)

// Validate reports what cannot work.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Mirror.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.VPCID == "" {
		errs = append(errs, errors.New("orchestrator: VPC id is required"))
	}
	if len(c.LBARNs) == 0 && len(c.LBTags) == 0 {
		errs = append(errs, errors.New("orchestrator: no load balancers selected (give ARNs and/or key=value tags)"))
	}
	for _, arn := range c.LBARNs {
		if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":loadbalancer/") {
			errs = append(errs, fmt.Errorf("orchestrator: %q is not a load balancer ARN", arn))
		}
	}
	if c.MirrorNLBARN != "" && (!strings.HasPrefix(c.MirrorNLBARN, "arn:") || !strings.Contains(c.MirrorNLBARN, ":loadbalancer/")) {
		errs = append(errs, fmt.Errorf("orchestrator: mirror NLB %q is not a load balancer ARN", c.MirrorNLBARN))
	}
	if c.MutationsPerSecond < 0 {
		errs = append(errs, errors.New("orchestrator: negative mutation rate"))
	}
	return errors.Join(errs...)
}

func (c *Config) writer() sessionwriter.Config {
	return sessionwriter.Config{
		Mirror: c.Mirror, MutationsPerSecond: c.MutationsPerSecond,
		BackoffBase: c.BackoffBase, BackoffMax: c.BackoffMax, Settle: c.Settle,
	}
}
