// Command sniffer is apitap's data plane: it receives AWS Traffic Mirroring
// packets (VXLAN over UDP 4789), rebuilds each TCP connection, pairs every
// HTTP/1.x request with its response and publishes one Akto record per pair
// to Kafka. With -pcap it replays a capture file instead and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sniffer: %v\n", err)
		return 2
	}
	if o.checkConfig {
		for _, line := range o.effective {
			fmt.Fprintln(stdout, line)
		}
		return 0
	}
	logger := newLogger(o, stderr)
	applyMemoryLimit(o, getenv, logger)
	if o.cpuProfile != "" {
		stopProfile, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			logger.Error("starting the CPU profile", "err", err)
			return 1
		}
		defer stopProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s, err := newSniffer(ctx, o, logger, stdout)
	if err != nil {
		logger.Error("starting sniffer", "err", err)
		return 1
	}
	if err := s.run(ctx); err != nil {
		logger.Error("sniffer failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(o *options, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	hopts := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

// startCPUProfile profiles the process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating CPU profile %s: %w", path, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing CPU profile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
