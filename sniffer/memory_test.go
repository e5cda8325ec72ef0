package main

import (
	"bytes"
	"testing"
)

func TestMemoryDefaultsFromTheBudget(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		want  memoryDefaults
	}{
		{256 << 20, memoryDefaults{MaxConns: 65536, TotalBuffer: 32 << 20, BodyMemory: 32 << 20, KafkaQueueBytes: 64 << 20}},
		{1 << 30, memoryDefaults{MaxConns: 1 << 18, TotalBuffer: 128 << 20, BodyMemory: 128 << 20, KafkaQueueBytes: 256 << 20}},
		{32 << 20, memoryDefaults{MaxConns: 8192, TotalBuffer: 4 << 20, BodyMemory: 4 << 20, KafkaQueueBytes: 8 << 20}},
	} {
		if got := deriveMemoryDefaults(tc.limit); got != tc.want {
			t.Errorf("%s: %+v, want %+v", formatBytes(tc.limit), got, tc.want)
		}
	}
}

func TestMemoryPlan(t *testing.T) {
	for _, tc := range []struct {
		limit   int64
		set     bool
		runtime int64
		want    memoryPlan
	}{
		// -memory-limit: the runtime gets 15/16, shedding starts at 5/8 of that.
		{256 << 20, false, 1 << 62, memoryPlan{GoLimit: 240 << 20, MaxHeapLive: 150 << 20}},
		// GOMEMLIMIT wins: the runtime's limit is left alone and shedding follows it.
		{256 << 20, true, 128 << 20, memoryPlan{MaxHeapLive: 80 << 20}},
	} {
		if got := planMemory(tc.limit, tc.set, tc.runtime); got != tc.want {
			t.Errorf("%+v: %+v, want %+v", tc, got, tc.want)
		}
	}
}

func TestMemoryLimitFlags(t *testing.T) {
	base := []string{"-pcap", "x.pcap", "-kafka", "none", "-out", "-"}
	o, err := parseFlags(append(base, "-memory-limit", "1GiB"), env(map[string]string{"SNIFFER_MAX_BODY_MEMORY": "8MiB"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.flow.MaxConns != 1<<18 || o.flow.MaxBufferBytes != 128<<20 || o.kafkaCfg.QueueBytes != 256<<20 {
		t.Errorf("derived: conns %d, buffer %d, kafka queue %d", o.flow.MaxConns, o.flow.MaxBufferBytes, o.kafkaCfg.QueueBytes)
	}
	if o.bodyMemory != 8<<20 {
		t.Errorf("an explicit SNIFFER_MAX_BODY_MEMORY must win over the derived default: %d", o.bodyMemory)
	}
	if o, err = parseFlags(append(base, "-max-conns", "1000", "-evict-idle", "0"), env(nil), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if o.flow.MaxConns != 1000 || o.flow.EvictIdle >= 0 {
		t.Errorf("explicit: conns %d, evict idle %v (want never)", o.flow.MaxConns, o.flow.EvictIdle)
	}
	for _, args := range [][]string{{"-memory-limit", "1MiB"}, {"-evict-idle", "-1s"}} {
		if _, err := parseFlags(append(base, args...), env(nil), &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// With GOMEMLIMIT set and no -memory-limit, the derived limits follow
// GOMEMLIMIT, so that together they stay within it.
func TestGOMEMLIMITSetsTheBudget(t *testing.T) {
	for _, tc := range []struct {
		gomemlimit string
		args       []string
		want       int64
	}{
		{"", nil, defaultMemLimit},
		{"off", nil, defaultMemLimit},
		{"garbage", nil, defaultMemLimit},
		{"120MiB", nil, 128 << 20},
		{"1920MiB", nil, 2 << 30},
		{"120MiB", []string{"-memory-limit", "1GiB"}, 1 << 30},
	} {
		o, err := parseFlags(tc.args, env(map[string]string{"GOMEMLIMIT": tc.gomemlimit}), &bytes.Buffer{})
		if err != nil {
			t.Fatalf("GOMEMLIMIT=%q %q: %v", tc.gomemlimit, tc.args, err)
		}
		if o.memoryLimit != tc.want {
			t.Errorf("GOMEMLIMIT=%q %q: budget %d, want %d", tc.gomemlimit, tc.args, o.memoryLimit, tc.want)
		}
		if d := deriveMemoryDefaults(tc.want); o.flow.MaxBufferBytes != d.TotalBuffer || o.kafkaCfg.QueueBytes != d.KafkaQueueBytes {
			t.Errorf("GOMEMLIMIT=%q %q: limits not derived from the budget", tc.gomemlimit, tc.args)
		}
	}
}
