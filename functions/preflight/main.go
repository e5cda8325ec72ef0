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

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/lambdafn"
	"github.com/apitap/apitap/internal/opsview"
)

func main() {
	lambdafn.CommandWith("preflight", lambdafn.CommandOptions{InvalidConfig: true}, func(ctx context.Context, env lambdafn.CommandEnv) (lambdafn.View, error) {
		if env.Stack == nil {
			return nil, errors.New("preflight needs the stack's whole configuration: " + contract.EnvConfig + " is not set")
		}
		return opsview.RunPreflight(ctx, Clients(env), *env.Stack, env.Now), nil
	})
}

// Clients are preflight's clients over the environment's configuration.
func Clients(env lambdafn.CommandEnv) opsview.PreflightClients {
	return opsview.PreflightClients{
		STS: sts.NewFromConfig(env.AWS), EC2: ec2.NewFromConfig(env.AWS), IAM: iam.NewFromConfig(env.AWS),
		Lambda: lambda.NewFromConfig(env.AWS), CloudTrail: cloudtrail.NewFromConfig(env.AWS),
		Quotas: servicequotas.NewFromConfig(env.AWS), Reader: env.Reader(),
	}
}
