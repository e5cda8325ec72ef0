package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFlagsFromEnvironment(t *testing.T) {
	o, err := parseFlags([]string{"-topic", "from-flag"}, env(map[string]string{
		"SNIFFER_TOPIC":          "from-env",
		"SNIFFER_KAFKA":          "b1:9092, b2:9092",
		"SNIFFER_MAX_BODY":       "64KiB",
		"SNIFFER_REORDER_WINDOW": "250ms",
		"SNIFFER_REDACT_HEADERS": "Authorization, Cookie",
		"SNIFFER_PENDING":        "drop",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.kafkaCfg.Topic != "from-flag" {
		t.Errorf("a flag must win over its environment variable: topic %q", o.kafkaCfg.Topic)
	}
	if got := o.brokers(); len(got) != 2 || got[1] != "b2:9092" {
		t.Errorf("brokers = %q", got)
	}
	if o.recorder.HTTP.MaxBodyBytes != 64<<10 || o.flow.ReorderWindow != 250*time.Millisecond {
		t.Errorf("max body %d, reorder window %v", o.recorder.HTTP.MaxBodyBytes, o.flow.ReorderWindow)
	}
	if len(o.recorder.Redact) != 2 || o.recorder.Redact[1] != "Cookie" {
		t.Errorf("redact = %q", o.recorder.Redact)
	}
	if o.recorder.HTTP.EmitPending {
		t.Error("SNIFFER_PENDING=drop ignored")
	}
	if o.recorder.Source != "MIRRORING" || !o.flow.Block || o.kafkaCfg.Block {
		t.Error("live mode: readers wait for the workers (-intake-wait), Kafka never blocks them")
	}
	o, err = parseFlags(nil, env(map[string]string{"SNIFFER_INTAKE_WAIT": "false"}), &bytes.Buffer{})
	if err != nil || o.flow.Block {
		t.Errorf("SNIFFER_INTAKE_WAIT=false: block %v, %v", o.flow.Block, err)
	}
}

func TestReplayMode(t *testing.T) {
	o, err := parseFlags([]string{"-pcap", "x.pcap", "-kafka", "none", "-out", "-"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.recorder.Source != "PCAP" || !o.flow.Block || !o.kafkaCfg.Block {
		t.Errorf("replay: source %q, flow block %v, kafka block %v", o.recorder.Source, o.flow.Block, o.kafkaCfg.Block)
	}
}

func TestBadConfiguration(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-kafka", "none"}, nil, "needs -out"},
		{[]string{"-kafka", "broker-without-port"}, nil, "has no port"},
		{[]string{"-pending", "keep"}, nil, "want emit or drop"},
		{[]string{"-max-body", "lots"}, nil, "invalid size"},
		{nil, map[string]string{"SNIFFER_MAX_CONNS": "many"}, "SNIFFER_MAX_CONNS"},
		{[]string{"-listen", "nope:nope:1"}, nil, "listen address"},
		{[]string{"-log-format", "xml"}, nil, "want text or json"},
		{[]string{"extra"}, nil, "unexpected arguments"},
		{[]string{"-read-batch", "0"}, nil, "-read-batch 0: want 1 to 1024"},
		{nil, map[string]string{"SNIFFER_READ_BATCH": "2000"}, "-read-batch 2000: want 1 to 1024"},
	} {
		_, err := parseFlags(tc.args, env(tc.env), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want one containing %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestHelpNamesEnvironmentVariables(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-h"}, env(nil), &out, &out); code != 0 {
		t.Fatalf("-h exited %d", code)
	}
	for _, want := range []string{"-kafka", "SNIFFER_KAFKA", "SNIFFER_MAX_BODY", "-pcap", "SNIFFER_REDACT_HEADERS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %s", want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "64KiB": 64 << 10, "1 MiB": 1 << 20, "2GiB": 2 << 30, "5MB": 5e6} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "12x"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

// TestREADMEDocumentsEveryFlag keeps the README's configuration table in
// step with the flags.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	run([]string{"-h"}, env(nil), &out, &out)
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		name := strings.Fields(line)[0]
		if !strings.Contains(string(readme), "`"+name+"`") || !strings.Contains(string(readme), envName(name[1:])) {
			t.Errorf("README does not document %s (%s)", name, envName(name[1:]))
		}
	}
}

// MSK IAM: the mechanism is built from the host's AWS configuration, and
// only over TLS.
func TestMSKIAM(t *testing.T) {
	if _, err := parseFlags([]string{"-kafka", "b:9098", "-kafka-sasl", "AWS_MSK_IAM"}, env(nil), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "needs -kafka-tls") {
		t.Errorf("MSK IAM without TLS: %v", err)
	}
	o, err := parseFlags([]string{"-kafka", "127.0.0.1:1", "-kafka-tls", "-kafka-sasl", "aws_msk_iam", "-admin-addr", "", "-health-addr", ""}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	s, err := newSniffer(context.Background(), o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.closeOutputs(context.Background())
	if m := o.kafkaCfg.Mechanism; m == nil || m.Name() != "AWS_MSK_IAM" {
		t.Errorf("mechanism %v", m)
	}
}
