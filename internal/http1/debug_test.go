package http1

import (
	"fmt"
	"testing"
)

func TestDebugGapSeed(t *testing.T) {
	s := fuzzSeeds[2]
	var st Stats
	emitted := 0
	// replay with tracing by wrapping feed: re-run generator quickly
	fuzzConversationTrace = func(kind string, dir int, b []byte) { fmt.Printf("%s %d %q\n", kind, dir, b) }
	defer func() { fuzzConversationTrace = nil }()
	_ = st
	_ = emitted
	fuzzConversation(t, []byte(s.script))
}
