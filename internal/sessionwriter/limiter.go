package sessionwriter

import (
	"context"
	"sync"
	"time"
)

// limiter is a token bucket for mutating calls: EC2 refills its mutating
// request buckets slowly (single digits per second), and a burst from us
// would throttle the account's other tools too.
type limiter struct {
	mu     sync.Mutex
	clock  Clock
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(clock Clock, perSecond float64, burst int) *limiter {
	return &limiter{clock: clock, rate: perSecond, burst: float64(burst), tokens: float64(burst), last: clock.Now()}
}

// wait takes one token, sleeping until one is there.
func (l *limiter) wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := l.clock.Now()
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		l.last = now
		if l.tokens >= 1 {
			l.tokens--
			l.mu.Unlock()
			return nil
		}
		need := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		l.mu.Unlock()
		if err := l.clock.Sleep(ctx, need); err != nil {
			return err
		}
	}
}
