package lambdafn

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	lambdasvc "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/opsview"
	"github.com/apitap/apitap/internal/orchestrator"
	"github.com/apitap/apitap/internal/remedy"
)

// Handler is one function's entry point.
type Handler func(f *Function, ctx context.Context, raw json.RawMessage) error

// Main is the whole main of a function: configuration from the
// environment, clients built once per container, then the Lambda runtime.
// With -event FILE it handles that one event locally instead (against the
// endpoints AWS_ENDPOINT_URL_* name, e.g. the simulated account) and exits.
func Main(name string, h Handler) {
	event := flag.String("event", "", "handle this event file once, locally, instead of starting the Lambda runtime")
	timeout := flag.Duration("timeout", 15*time.Minute, "with -event: the invocation's deadline, as Lambda's function timeout gives one")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx := context.Background()
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(2)
	}
	awsCfg, err := AWSConfig(ctx)
	if err != nil {
		log.Error("loading AWS configuration", "err", err)
		os.Exit(2)
	}
	clients := NewClients(awsCfg)
	o, err := orchestrator.New(cfg, clients.Orchestrator(), nil, log)
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(2)
	}
	f := &Function{Name: name, StackName: cfg.Mirror.StackName, O: o, Clock: orchestrator.RealClock{}, Log: log, Metrics: os.Stdout}
	rc, table, topic, ok, err := RemedyConfigFromEnv(os.Getenv)
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(2)
	}
	if ok {
		f.Remedy = NewRemedy(rc, table, topic, awsCfg, clients, cfg, log, f.Clock.Now)
	}
	if *event != "" {
		raw, err := os.ReadFile(*event)
		if err != nil {
			log.Error("reading event", "err", err)
			os.Exit(2)
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if err := h(f, ctx, raw); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	lambda.StartWithOptions(func(ctx context.Context, raw json.RawMessage) error { return h(f, ctx, raw) }, lambda.WithEnableSIGTERM())
}

// NewRemedy builds the diagnosis engine on one AWS configuration.
func NewRemedy(cfg remedy.Config, table, topic string, awsCfg aws.Config, clients Clients, oc orchestrator.Config, log *slog.Logger, now func() time.Time) *remedy.Engine {
	cw := cloudwatch.NewFromConfig(awsCfg)
	reader := func() *inventory.Reader {
		return inventory.New(oc.Config, clients.Inventory(), &inventory.Memo{}, log)
	}
	return &remedy.Engine{
		Targets: clients.ELBv2,
		Metrics: cw,
		Sources: func(ctx context.Context) ([]string, error) {
			ss, err := reader().AllSessions(ctx)
			if err != nil {
				return nil, err
			}
			var ids []string
			for _, s := range ss {
				if id := s.Tags[contract.TagInstance]; id != "" && oc.Mirror.Owns(s) {
					ids = append(ids, id)
				}
			}
			return ids, nil
		},
		Status: func(ctx context.Context, at time.Time) (*opsview.Status, error) {
			return opsview.GatherStatus(ctx, reader(), cw, opsview.Scope{Mirror: oc.Mirror, Region: oc.Region, VPC: oc.VPCID}, at)
		},
		Cfg: cfg,
		Report: &remedy.Reporter{DB: dynamodb.NewFromConfig(awsCfg), TableName: table, Topic: sns.NewFromConfig(awsCfg), TopicARN: topic,
			Stack: cfg.Stack.StackName, Log: log, Now: now},
		Events: cloudformation.NewFromConfig(awsCfg), Fleet: clients.AutoScaling, Keys: kms.NewFromConfig(awsCfg),
		Invoker: lambdasvc.NewFromConfig(awsCfg), Log: log,
	}
}
