// Command connections lists every load balancer of the region, whether the
// stack mirrors it or why it cannot, and for each target whether it can be
// mirrored. A Lambda function invoked on demand, or run locally with the
// stack's cdk.json: go run ./functions/connections [-json].
package main

import (
	"context"

	"github.com/apitap/apitap/internal/lambdafn"
	"github.com/apitap/apitap/internal/opsview"
)

func main() {
	lambdafn.Command("connections", func(ctx context.Context, env lambdafn.CommandEnv) (lambdafn.View, error) {
		return opsview.GatherConnections(ctx, env.Reader(), env.Scope())
	})
}
