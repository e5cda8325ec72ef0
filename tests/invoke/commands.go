package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/lambdafn"
	"github.com/apitap/apitap/internal/opsview"
	"github.com/apitap/apitap/internal/orchestrator"
	"github.com/apitap/apitap/tests/invoke/sampleworld"
)

// The operator commands on the sample world, deployed and mirrored by a
// reconcile a minute ago: the sniffers published traffic for web-alb and
// legacy-clb over the last 15 minutes, none for api-nlb.
var commands = map[string]bool{contract.CmdConnections: true, contract.CmdPreflight: true, contract.CmdStatus: true}

func runCommand(out io.Writer, name string, asJSON bool) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w, err := sampleworld.New()
	if err != nil {
		return 2, fmt.Errorf("building the simulated account: %w", err)
	}
	defer w.Close()
	env := w.Env()
	cfg, err := lambdafn.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		return 2, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := w.Mirror(ctx, cfg); err != nil {
		return 2, err
	}
	o, err := orchestrator.New(cfg, w.Clients(), w.Clock, quiet)
	if err != nil {
		return 2, err
	}
	if err := w.PublishReconcile(ctx, o.Reconcile(ctx, time.Time{})); err != nil {
		return 2, err
	}
	w.Clock.Advance(time.Minute)
	c := w.Clients()
	rd := func() *inventory.Reader {
		return inventory.New(cfg.Config, inventory.Clients{EC2: c.EC2, ELBv2: c.ELBv2, Classic: c.Classic}, &inventory.Memo{}, quiet)
	}
	lbs, err := rd().Selection(ctx)
	if err != nil {
		return 2, err
	}
	for _, lb := range lbs {
		if lb.ARN == w.ALB || lb.ARN == w.Classic {
			series := make([]float64, 15)
			for i := range series {
				series[i] = float64(40 + i%7)
			}
			if err := w.PublishTraffic(ctx, lb.VNI, series); err != nil {
				return 2, err
			}
		}
	}
	scope := opsview.Scope{Mirror: cfg.Mirror, Region: cfg.Region, VPC: cfg.VPCID}
	var v lambdafn.View
	switch name {
	case contract.CmdConnections:
		v, err = opsview.GatherConnections(ctx, rd(), scope)
	case contract.CmdStatus:
		v, err = opsview.GatherStatus(ctx, rd(), w.CloudWatch(), scope, w.Clock.Now())
	case contract.CmdPreflight:
		v = opsview.RunPreflight(ctx, opsview.NewPreflightClients(w.Acct.Config(), rd()), w.StackConfig(), w.Clock.Now())
	}
	if err != nil {
		return 1, err
	}
	if err := lambdafn.Print(out, v, asJSON); err != nil {
		return 1, err
	}
	if f, ok := v.(lambdafn.Failer); ok && f.Failed() {
		return 1, nil
	}
	return 0, nil
}
