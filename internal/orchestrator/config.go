package orchestrator

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/sessionwriter"
)

// Config is what the stack tells the functions (through environment
// variables, see lambdafn.ConfigFromEnv).
type Config struct {
	Mirror mirror.Config
	// MirrorNLBARN is the stack's own NLB, behind its mirror target: never
	// selected. When empty it is looked up from the mirror target.
	MirrorNLBARN string
	// VPCID is the stack's VPC: load balancers elsewhere are not selectable.
	VPCID string
	// Region and AccountID build Classic load balancer ARNs (the Classic
	// API returns names only) for VNIs and tags.
	Region, AccountID string
	// LBARNs selects load balancers by ARN (ELBv2 ARNs, or Classic ARNs
	// arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/NAME).
	LBARNs []string
	// LBTags selects every load balancer in the VPC carrying one of these
	// key=value tags.
	LBTags map[string]string
	// MutationsPerSecond limits create and delete calls. Default 5.
	MutationsPerSecond float64
	// Margin is how long before the invocation's deadline no new work is
	// started, leaving time to log the summary. Default 10s.
	Margin time.Duration
	// BackoffBase and BackoffMax bound how long an ENI whose create failed
	// for a lasting reason waits before it is tried again. Default 10m, 6h.
	BackoffBase, BackoffMax time.Duration
	// Settle is how long Describe is given to catch up with a create or a
	// delete: before a create with a fresh token, and between the
	// teardown's listings. Default 5s.
	Settle time.Duration
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
}

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

func (c *Config) inventory() inventory.Config {
	return inventory.Config{
		Mirror: c.Mirror, MirrorNLBARN: c.MirrorNLBARN, VPCID: c.VPCID,
		Region: c.Region, AccountID: c.AccountID, LBARNs: c.LBARNs, LBTags: c.LBTags,
	}
}

func (c *Config) writer() sessionwriter.Config {
	return sessionwriter.Config{
		Mirror: c.Mirror, MutationsPerSecond: c.MutationsPerSecond,
		BackoffBase: c.BackoffBase, BackoffMax: c.BackoffMax, Settle: c.Settle,
	}
}
