package orchestrator

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apitap/apitap/internal/mirror"
)

// Config is what the stack tells the functions (through environment
// variables, see FromEnv).
type Config struct {
	Mirror mirror.Config
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
}

func (c *Config) setDefaults() {
	if c.MutationsPerSecond <= 0 {
		c.MutationsPerSecond = 5
	}
	if c.Margin <= 0 {
		c.Margin = 10 * time.Second
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 10 * time.Minute
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 6 * time.Hour
	}
	if c.Mirror.SessionNumber == 0 {
		c.Mirror.SessionNumber = 1
	}
	if c.Mirror.Conflict == "" {
		c.Mirror.Conflict = mirror.ConflictSkip
	}
	if c.Mirror.Grace == 0 {
		c.Mirror.Grace = 3 * time.Minute
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
	if c.MutationsPerSecond < 0 {
		errs = append(errs, errors.New("orchestrator: negative mutation rate"))
	}
	return errors.Join(errs...)
}

// classicARN is the ARN of a Classic load balancer.
func (c *Config) classicARN(name string) string {
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/%s", c.Region, c.AccountID, name)
}

// classicName is the name in a Classic ARN, "" for an ELBv2 ARN (whose
// resource part is loadbalancer/app/... or loadbalancer/net/...).
func classicName(arn string) string {
	_, rest, ok := strings.Cut(arn, ":loadbalancer/")
	if !ok || strings.Contains(rest, "/") {
		return ""
	}
	return rest
}
