// Command infra is apitap's CDK app: `cdk synth` and `cdk deploy` run it
// (see cdk.json). The configuration is CDK context (keys apitap:*, README
// "Deploying"); the assets are the binaries `make build-functions
// build-sniffer-arm64` writes under bin/, relative to the working
// directory, which the CDK command line sets to the repository root.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/apitap/apitap/infra/stack"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	if err := build(app); err != nil {
		fmt.Fprintln(os.Stderr, "apitap:", err)
		os.Exit(1)
	}
	app.Synth(nil)
}

func build(app awscdk.App) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	_, err = stack.Build(app, root)
	return err
}
