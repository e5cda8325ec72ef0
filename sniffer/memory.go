package main

import (
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Shares of -memory-limit. The rest is the runtime's: goroutine stacks,
// packet batches, decompressors, records being encoded, and the collector's
// room to work.
const (
	bytesPerConn     = 4 << 10 // -max-conns: 4 KiB of the budget per connection (65,536 at 256 MiB); one holding a partial request costs about 2 KiB of heap, and the heap may hold 5/8 of the runtime's limit: so the limit filled fits the budget (README "Performance")
	bufferShare      = 8       // -total-buffer: an eighth
	bodyShare        = 8       // -max-body-memory: an eighth
	kafkaQueueShare  = 4       // -kafka-queue-bytes: a quarter
	minMemoryLimit   = 32 << 20
	heapLiveNum      = 5 // new connections are shed once the live heap passes 5/8 of the limit
	heapLiveDen      = 8
	goLimitNum       = 15 // the runtime's limit: 15/16, leaving room for what Go does not count (binary text, C stacks)
	goLimitDen       = 16
	defaultMemLimit  = 256 << 20
	defaultEvictIdle = "10s"
)

// memoryDefaults are the limits -memory-limit gives those flags not set
// explicitly.
type memoryDefaults struct {
	MaxConns        int
	TotalBuffer     int64
	BodyMemory      int64
	KafkaQueueBytes int64
}

// deriveMemoryDefaults splits a memory budget between the limits that hold
// memory.
func deriveMemoryDefaults(limit int64) memoryDefaults {
	return memoryDefaults{
		MaxConns:        int(max(1, limit/bytesPerConn)),
		TotalBuffer:     limit / bufferShare,
		BodyMemory:      limit / bodyShare,
		KafkaQueueBytes: limit / kafkaQueueShare,
	}
}

// memoryPlan is what the process does with its memory limit.
type memoryPlan struct {
	// GoLimit is given to debug.SetMemoryLimit; 0 leaves the runtime's
	// limit alone (GOMEMLIMIT is set and wins).
	GoLimit int64
	// MaxHeapLive is the live heap above which new connections are shed
	// (flow.Config.MaxHeapLive).
	MaxHeapLive int64
}

// planMemory derives the runtime's limit and the shedding threshold from
// -memory-limit, or from GOMEMLIMIT (runtimeLimit, what the runtime read
// from it) when that is set: the operator's runtime setting wins.
func planMemory(limit int64, gomemlimitSet bool, runtimeLimit int64) memoryPlan {
	if gomemlimitSet {
		return memoryPlan{MaxHeapLive: runtimeLimit / heapLiveDen * heapLiveNum}
	}
	goLimit := limit / goLimitDen * goLimitNum
	return memoryPlan{GoLimit: goLimit, MaxHeapLive: goLimit / heapLiveDen * heapLiveNum}
}

// applyMemoryLimit sets the runtime's memory limit and the reassembler's
// shedding threshold, and says which limit holds.
func applyMemoryLimit(o *options, getenv func(string) string, log *slog.Logger) {
	set := getenv("GOMEMLIMIT") != ""
	p := planMemory(o.memoryLimit, set, debug.SetMemoryLimit(-1))
	source := "-memory-limit"
	if set {
		source = "GOMEMLIMIT"
	} else {
		debug.SetMemoryLimit(p.GoLimit)
	}
	o.flow.MaxHeapLive = p.MaxHeapLive
	log.Info("memory limit", "source", source, "go_memory_limit", debug.SetMemoryLimit(-1),
		"shed_new_conns_above_live_heap", p.MaxHeapLive, "max_conns", o.flow.MaxConns,
		"total_buffer", o.flow.MaxBufferBytes, "max_body_memory", o.bodyMemory, "kafka_queue_bytes", o.kafkaCfg.QueueBytes)
}

func validateMemoryLimit(limit int64) error {
	if limit < minMemoryLimit {
		return fmt.Errorf("-memory-limit %s: want at least %s", formatBytes(limit), formatBytes(minMemoryLimit))
	}
	return nil
}

// budgetFromGOMEMLIMIT is the -memory-limit that GOMEMLIMIT implies (the
// runtime's limit is 15/16 of the budget); false when it is unset, "off" or
// a size this cannot read (the defaults then follow -memory-limit).
func budgetFromGOMEMLIMIT(v string) (int64, bool) {
	n, err := parseBytes(v)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n / goLimitNum * goLimitDen, true
}
