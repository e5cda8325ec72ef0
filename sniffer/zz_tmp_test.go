package main

import (
	"context"
	"io"
	"testing"
	"time"
)

// What live() does when the engine is still flushing at the shutdown
// deadline: closeOutputs runs while workers keep publishing.
func TestTmpPublishDuringCloseOutputs(t *testing.T) {
	lw, _ := newLineWriter("-", io.Discard)
	s := &sniffer{lines: lw, o: &options{out: "-"}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("worker panicked: %v", r)
			}
		}()
		end := time.Now().Add(200 * time.Millisecond)
		for time.Now().Before(end) {
			s.Publish([]byte("k"), []byte("{}"))
		}
	}()
	time.Sleep(time.Millisecond)
	s.closeOutputs(context.Background())
	<-done
}
