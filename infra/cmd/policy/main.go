// Command policy prints the least-privilege IAM policy for deploying and
// destroying apitap's stack (`make policy`). It synthesizes the stack in
// process with the same configuration `cdk synth` uses (the context of
// cdk.json and cdk.context.json, overridden by -c key=value), and derives
// the policy from the template (package infra/policy).
//
//	go run ./infra/cmd/policy [-c apitap:stackName=prod ...] [-template cdk.out/apitap.template.json]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/apitap/apitap/infra/policy"
	"github.com/apitap/apitap/infra/stack"
)

type contextFlags map[string]any

func (c contextFlags) String() string { return "" }
func (c contextFlags) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("%q is not key=value", kv)
	}
	c[k] = v
	return nil
}

func main() {
	overrides := contextFlags{}
	flag.Var(overrides, "c", "context key=value, as for cdk (repeatable)")
	root := flag.String("root", ".", "repository root (holds cdk.json and bin/)")
	tmpl := flag.String("template", "", "use this synthesized template instead of synthesizing (its configuration must match the context)")
	outDir := flag.String("out", "", "also write the policy as managed-policy-sized parts DIR/apitap-deploy-N.json")
	flag.Parse()
	if err := run(*root, *tmpl, *outDir, overrides); err != nil {
		fmt.Fprintln(os.Stderr, "policy:", err)
		os.Exit(1)
	}
}

func run(root, tmpl, outDir string, overrides contextFlags) error {
	ctx, err := Context(root)
	if err != nil {
		return err
	}
	for k, v := range overrides {
		ctx[k] = v
	}
	cfg, err := stack.FromContext(func(k string) any { return ctx[k] })
	if err != nil {
		return err
	}
	var body []byte
	if tmpl != "" {
		body, err = os.ReadFile(tmpl)
	} else {
		body, err = synth(root, ctx, cfg.StackName)
	}
	if err != nil {
		return err
	}
	qualifier, _ := ctx["@aws-cdk/core:bootstrapQualifier"].(string)
	doc, err := policy.Generate(body, policy.Params{
		Partition: cfg.Partition(), Account: cfg.Account, Region: cfg.Region,
		StackName: cfg.StackName, Qualifier: qualifier,
	})
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	parts := doc.Split(policy.MaxManagedPolicySize)
	if outDir == "" {
		if len(parts) > 1 {
			fmt.Fprintf(os.Stderr, "policy: %d characters: more than one IAM managed policy holds (%d); -out DIR writes %d parts\n",
				doc.Size(), policy.MaxManagedPolicySize, len(parts))
		}
		return nil
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	for i, p := range parts {
		b, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			return err
		}
		name := filepath.Join(outDir, fmt.Sprintf("%s-deploy-%d.json", cfg.StackName, i+1))
		if err := os.WriteFile(name, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "policy: wrote %s (%d characters)\n", name, p.Size())
	}
	return nil
}

// Context is the CDK context the command line would give the app: the
// "context" of cdk.json, then cdk.context.json.
func Context(root string) (map[string]any, error) {
	ctx := map[string]any{}
	for _, name := range []string{"cdk.json", "cdk.context.json"} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if os.IsNotExist(err) && name == "cdk.context.json" {
			continue
		}
		if err != nil {
			return nil, err
		}
		var f map[string]any
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if name == "cdk.json" {
			f, _ = f["context"].(map[string]any)
		}
		for k, v := range f {
			ctx[k] = v
		}
	}
	return ctx, nil
}

func synth(root string, ctx map[string]any, stackName string) ([]byte, error) {
	defer jsii.Close()
	out, err := os.MkdirTemp("", "apitap-policy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(out), AnalyticsReporting: jsii.Bool(false)})
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if _, err := stack.Build(app, abs); err != nil {
		return nil, err
	}
	app.Synth(nil)
	return os.ReadFile(filepath.Join(out, stackName+".template.json"))
}
