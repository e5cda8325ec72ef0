// Command preflight checks an account before the first deploy of the
// stack: the configuration, credentials, VPC and subnets, instance types
// per zone, the Auto Scaling service-linked role, Lambda concurrency, a
// trail for registration events, the mirror session quota and the
// selected load balancers. Run locally with the stack's cdk.json
// (go run ./functions/preflight [-json]; exit status 1 on any fail), or
// invoked on demand as a Lambda function of a deployed stack.
package main

import (
	"context"
	"errors"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/lambdafn"
	"github.com/apitap/apitap/internal/opsview"
)

func main() {
	lambdafn.CommandWith("preflight", lambdafn.CommandOptions{InvalidConfig: true}, func(ctx context.Context, env lambdafn.CommandEnv) (lambdafn.View, error) {
		if env.Stack == nil {
			return nil, errors.New("preflight needs the stack's whole configuration: " + contract.EnvConfig + " is not set")
		}
		return opsview.RunPreflight(ctx, opsview.NewPreflightClients(env.AWS, env.Reader()), *env.Stack, env.Now), nil
	})
}
