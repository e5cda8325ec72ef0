package lambdafn

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/opsview"
	"github.com/apitap/apitap/internal/stackconfig"
)

// The operator commands (connections, preflight, status) answer questions
// instead of changing anything. Each runs as a Lambda function invoked on
// demand (configuration from the stack's environment, the answer as the
// invocation's JSON result) and as a local command with the user's own
// credentials and the stack's cdk.json, printing tables or JSON.

// View is a command's answer.
type View interface {
	// Write prints it as aligned tables.
	Write(w io.Writer) error
}

// Failer is a View that can say the command failed (preflight's fails):
// the local command then exits 1.
type Failer interface{ Failed() bool }

// CommandEnv is what a command runs with.
type CommandEnv struct {
	// Inventory is the reader's configuration: the stack, its mirror
	// target (empty before the first deploy) and the selection.
	Inventory inventory.Config
	// Stack is the whole stack configuration: from cdk.json locally, from
	// APITAP_CONFIG in Lambda (nil when the function has none).
	Stack *stackconfig.Config
	AWS   aws.Config
	Now   time.Time
	Log   *slog.Logger
}

// Reader is the inventory reader over the environment's clients.
func (e CommandEnv) Reader() *inventory.Reader {
	return inventory.New(e.Inventory, NewClients(e.AWS).Inventory(), &inventory.Memo{}, e.Log)
}

// Scope is the stack a view is about.
func (e CommandEnv) Scope() opsview.Scope {
	return opsview.Scope{Mirror: e.Inventory.Mirror, Region: e.Inventory.Region, VPC: e.Inventory.VPCID}
}

// CommandFunc computes a command's view.
type CommandFunc func(ctx context.Context, env CommandEnv) (View, error)

// Command is the whole main of an operator command.
func Command(name string, run CommandFunc) { CommandWith(name, CommandOptions{}, run) }

// CommandOptions change how a command reads its configuration.
type CommandOptions struct {
	// InvalidConfig lets the command run on a cdk.json that does not
	// validate (preflight reports the errors as a check).
	InvalidConfig bool
}

// CommandWith is Command with options.
func CommandWith(name string, opts CommandOptions, run CommandFunc) {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		lambda.Start(func(ctx context.Context, _ json.RawMessage) (View, error) {
			env, err := lambdaEnv(ctx, log)
			if err != nil {
				return nil, err
			}
			return run(ctx, env)
		})
		return
	}
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	ctxFile := fs.String("context", "cdk.json", `the stack's configuration: a cdk.json whose "context" holds the apitap:* keys`)
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Parse(os.Args[1:])
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	env, err := LocalEnv(ctx, *ctxFile, opts.InvalidConfig, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	v, err := run(ctx, env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	if err := Print(os.Stdout, v, *asJSON); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	if f, ok := v.(Failer); ok && f.Failed() {
		os.Exit(1)
	}
}

// Print writes v as tables, or as indented JSON.
func Print(w io.Writer, v View, asJSON bool) error {
	if !asJSON {
		return v.Write(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// lambdaEnv is the environment of a command running in Lambda: the
// variables the stack sets, and the whole configuration in APITAP_CONFIG
// when the function has it.
func lambdaEnv(ctx context.Context, log *slog.Logger) (CommandEnv, error) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return CommandEnv{}, err
	}
	awsCfg, err := AWSConfig(ctx)
	if err != nil {
		return CommandEnv{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	env := CommandEnv{Inventory: cfg.Config, AWS: awsCfg, Now: time.Now(), Log: log}
	if raw := os.Getenv(contract.EnvConfig); raw != "" {
		var sc stackconfig.Config
		if err := json.Unmarshal([]byte(raw), &sc); err != nil {
			return CommandEnv{}, fmt.Errorf("%s: %w", contract.EnvConfig, err)
		}
		env.Stack = &sc
	}
	return env, nil
}

// LocalEnv is the environment of a command run by a user: the stack's
// configuration from the cdk.json at path, the user's credentials, and
// the deployed stack's mirror target and filter from its outputs when it
// is deployed.
func LocalEnv(ctx context.Context, path string, invalidOK bool, log *slog.Logger) (CommandEnv, error) {
	sc, err := ReadCDKContext(path)
	if err != nil && !(invalidOK && errors.As(err, new(*stackconfig.InvalidError))) {
		return CommandEnv{}, err
	}
	awsCfg, err := AWSConfig(ctx, config.WithRegion(sc.Region))
	if err != nil {
		return CommandEnv{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	env := CommandEnv{Inventory: InventoryConfig(sc), Stack: &sc, AWS: awsCfg, Now: time.Now(), Log: log}
	out, err := StackOutputs(ctx, cloudformation.NewFromConfig(awsCfg), sc.StackName)
	if err != nil {
		return CommandEnv{}, err
	}
	env.Inventory.Mirror.TargetID = out["MirrorTargetId"]
	env.Inventory.Mirror.FilterID = out["MirrorFilterId"]
	if env.Inventory.Mirror.TargetID == "" {
		// Not deployed: no session is the stack's, and no load balancer
		// is its own.
		env.Inventory.MirrorNLBARN = "none"
	}
	return env, nil
}

// ReadCDKContext reads and validates the apitap:* keys of a cdk.json. A
// configuration that reads but does not validate comes with a
// *stackconfig.InvalidError.
func ReadCDKContext(path string) (stackconfig.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return stackconfig.Config{}, fmt.Errorf("reading the stack's configuration: %w", err)
	}
	var doc struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return stackconfig.Config{}, fmt.Errorf("reading %s: %w", path, err)
	}
	return stackconfig.FromContext(func(k string) any { return doc.Context[k] })
}

// InventoryConfig is the reader's configuration for a stack configuration,
// as the stack gives it to the functions (without the mirror target, which
// exists once deployed).
func InventoryConfig(sc stackconfig.Config) inventory.Config {
	return inventory.Config{
		Mirror: mirror.Config{
			StackName:     sc.StackName,
			SessionNumber: int32(sc.SessionNumber),
			Conflict:      mirror.ConflictPolicy(sc.ConflictPolicy),
		},
		VPCID:     sc.VPCID,
		Region:    sc.Region,
		AccountID: sc.Account,
		LBARNs:    sc.LoadBalancerARNs,
		LBTags:    sc.LoadBalancerTags,
	}
}

// StackOutputs are the outputs of the stack, empty when it does not exist.
func StackOutputs(ctx context.Context, cfn cloudformation.DescribeStacksAPIClient, name string) (map[string]string, error) {
	out := map[string]string{}
	res, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		// CloudFormation's answer for a stack that does not exist
		// (DescribeStacks: ValidationError "Stack with id X does not
		// exist").
		var ae interface{ ErrorCode() string }
		if errors.As(err, &ae) && ae.ErrorCode() == "ValidationError" && strings.Contains(err.Error(), "does not exist") {
			return out, nil
		}
		return nil, fmt.Errorf("describing stack %s: %w", name, err)
	}
	for _, s := range res.Stacks {
		for _, o := range s.Outputs {
			out[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
		}
	}
	return out, nil
}
