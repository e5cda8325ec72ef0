// Command status tells, per selected load balancer of a deployed stack,
// its sessions, the last reconcile and whether traffic arrives, with a
// verdict. A Lambda function invoked on demand, or run locally with the
// stack's cdk.json: go run ./functions/status [-json].
package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/apitap/apitap/internal/lambdafn"
	"github.com/apitap/apitap/internal/opsview"
)

func main() {
	lambdafn.Command("status", func(ctx context.Context, env lambdafn.CommandEnv) (lambdafn.View, error) {
		return opsview.GatherStatus(ctx, env.Reader(), cloudwatch.NewFromConfig(env.AWS), env.Scope(), env.Now)
	})
}
