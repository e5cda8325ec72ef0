// Package lambdafn holds the handlers of apitap's Lambda functions. The
// mains under functions/ only read the environment, build the clients once
// per container and start the Lambda runtime; everything they do is here,
// where tests and local invocation reach it.
package lambdafn

import (
	"context"
	"errors"
	"fmt"
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

	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/orchestrator"
)

// Environment variables the stack sets on every function.
const (
	EnvStackName     = "APITAP_STACK_NAME"
	EnvTargetID      = "APITAP_MIRROR_TARGET_ID"
	EnvFilterID      = "APITAP_MIRROR_FILTER_ID"
	EnvVPCID         = "APITAP_VPC_ID"
	EnvLBARNs        = "APITAP_LB_ARNS"         // comma-separated
	EnvLBTags        = "APITAP_LB_TAGS"         // comma-separated key=value
	EnvSessionNumber = "APITAP_SESSION_NUMBER"  // default 1
	EnvConflict      = "APITAP_CONFLICT_POLICY" // skip (default) or coexist
	EnvRate          = "APITAP_MUTATIONS_PER_SECOND"
	EnvAccountID     = "APITAP_ACCOUNT_ID"
	EnvRegion        = "AWS_REGION"
)

// ConfigFromEnv reads the orchestrator's configuration.
func ConfigFromEnv(getenv func(string) string) (orchestrator.Config, error) {
	var errs []error
	c := orchestrator.Config{
		Mirror: mirror.Config{
			StackName: getenv(EnvStackName),
			TargetID:  getenv(EnvTargetID),
			FilterID:  getenv(EnvFilterID),
			Conflict:  mirror.ConflictPolicy(getenv(EnvConflict)),
		},
		VPCID:     getenv(EnvVPCID),
		Region:    getenv(EnvRegion),
		AccountID: getenv(EnvAccountID),
	}
	for _, arn := range strings.Split(getenv(EnvLBARNs), ",") {
		if arn = strings.TrimSpace(arn); arn != "" {
			c.LBARNs = append(c.LBARNs, arn)
		}
	}
	for _, kv := range strings.Split(getenv(EnvLBTags), ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("%s: %q is not key=value", EnvLBTags, kv))
			continue
		}
		if c.LBTags == nil {
			c.LBTags = map[string]string{}
		}
		c.LBTags[k] = v
	}
	if v := getenv(EnvSessionNumber); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvSessionNumber, err))
		}
		c.Mirror.SessionNumber = int32(n)
	}
	if v := getenv(EnvRate); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive number", EnvRate, v))
		}
		c.MutationsPerSecond = f
	}
	if c.Region == "" {
		errs = append(errs, fmt.Errorf("%s is not set", EnvRegion))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// AWSConfig loads the SDK configuration once per container: the standard
// retryer with more attempts (EC2 throttles per account and action) and
// apitap's user agent, so CloudTrail shows who made the calls.
func AWSConfig(ctx context.Context) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx,
		config.WithAppID("apitap"),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 8
				o.MaxBackoff = 20 * time.Second
			})
		}),
	)
}

// NewClients builds the orchestrator's clients from one configuration.
func NewClients(cfg aws.Config) orchestrator.Clients {
	return orchestrator.Clients{
		EC2:         ec2.NewFromConfig(cfg),
		ELBv2:       elbv2.NewFromConfig(cfg),
		Classic:     elb.NewFromConfig(cfg),
		AutoScaling: autoscaling.NewFromConfig(cfg),
	}
}
