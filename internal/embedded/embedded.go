// Package embedded runs an in-process Kafka-compatible broker (franz-go's
// kfake) for demos and fast tests, and reads a topic back with a client that
// apitap's producer does not share (franz-go's kgo).
//
// It is not a production broker: everything lives in memory and is lost on
// Close.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// segmentBytes is the size at which the broker starts a new segment.
const segmentBytes = 8 << 20

// Broker is a single in-process broker. Addr and Close are safe to call
// concurrently; Close may be called more than once.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	stop    chan struct{}
	done    chan struct{}
}

// Start runs an in-process Kafka-compatible broker (franz-go's kfake) with one
// node listening on addr, with topic created up front with the given number of
// partitions. Topics the clients ask for are created on the fly with the same
// partition count (auto-creation is allowed).
//
// addr "" listens on 127.0.0.1 on a random port; an addr with an empty host
// (":9092") listens on 127.0.0.1 on that port; any other addr is used as
// given. The broker advertises the address it listens on, so clients must be
// able to reach it there. topic "" creates no topic up front; partitions below
// 1 mean 1.
func Start(addr, topic string, partitions int) (*Broker, error) {
	return start(addr, topic, partitions, 0)
}

// StartBounded is Start for a broker that runs for long (live capture on
// the embedded default): each partition keeps at most maxBytes of the
// newest records, older ones are dropped every few seconds, so memory
// stays bounded whatever the traffic.
func StartBounded(addr, topic string, partitions int, maxBytes int64) (*Broker, error) {
	return start(addr, topic, partitions, maxBytes)
}

func start(addr, topic string, partitions int, maxBytes int64) (*Broker, error) {
	if partitions < 1 {
		partitions = 1
	}
	listenAddr := "127.0.0.1:0"
	if addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("embedded: starting broker on %q: %w", addr, err)
		}
		if host == "" {
			host = "127.0.0.1"
		}
		listenAddr = net.JoinHostPort(host, port)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(partitions),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, listenAddr)
		}),
	}
	if topic != "" {
		opts = append(opts, kfake.SeedTopics(int32(partitions), topic))
	}
	// kfake keeps each segment in one slice that doubles as it grows,
	// copying under the partition's lock: at its default of 100 MB a
	// segment stalls produce requests for tens of milliseconds at each
	// doubling. Small segments keep every copy short, and let retention
	// (which drops whole segments) keep memory near maxBytes.
	configs := map[string]string{"log.segment.bytes": strconv.Itoa(segmentBytes)}
	if maxBytes > 0 {
		configs["log.retention.bytes"] = strconv.FormatInt(maxBytes, 10)
	}
	opts = append(opts, kfake.BrokerConfigs(configs))
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded: starting broker on %s: %w", listenAddr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, fmt.Errorf("embedded: starting broker on %s: got %d listeners, want 1", listenAddr, len(addrs))
	}
	b := &Broker{cluster: c, addr: addrs[0]}
	if maxBytes > 0 {
		// kfake applies retention on its own only for topics with
		// retention settings of their own: apply the broker's here.
		b.stop, b.done = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(b.done)
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-b.stop:
					return
				case <-t.C:
					c.ApplyRetention()
				}
			}
		}()
	}
	return b, nil
}

// Addr returns the "host:port" the broker listens on, e.g. "127.0.0.1:40123".
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker and drops everything it stored.
func (b *Broker) Close() {
	if b.stop != nil {
		close(b.stop)
		<-b.done
	}
	b.cluster.Close()
}

// Message is one record read back from a topic. Key and Value are nil when the
// record had none.
type Message struct {
	Key, Value []byte
	Partition  int32
	Offset     int64
}

// ReadAll reads every record currently in topic, all partitions from their
// start, with a franz-go client, and stops once it has read up to the high
// watermarks it found when it started. Records produced meanwhile may or may
// not be included. The result is ordered by partition, then offset.
//
// When ctx ends first, ReadAll returns what it has read so far together with
// an error wrapping ctx.Err().
func ReadAll(ctx context.Context, addr, topic string) ([]Message, error) {
	var out []Message
	err := ReadEach(ctx, addr, topic, func(m Message) { out = append(out, m) })
	sortMessages(out)
	return out, err
}

// ReadEach is ReadAll without holding the records: it calls fn with each
// one, in offset order within a partition, so that millions of records can
// be checked in bounded memory. opts are added to both of its clients (a
// benchmark dials the broker inside a network namespace with kgo.Dialer).
func ReadEach(ctx context.Context, addr, topic string, fn func(Message), opts ...kgo.Opt) error {
	admin, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		return fmt.Errorf("embedded: reading topic %s: %w", topic, err)
	}
	ends, err := endOffsets(ctx, admin, topic)
	admin.Close()
	if err != nil {
		return fmt.Errorf("embedded: reading topic %s: %w", topic, err)
	}
	offsets := make(map[int32]kgo.Offset)
	for p, r := range ends {
		if r.end > r.start {
			offsets[p] = kgo.NewOffset().At(r.start)
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	// The consumer gets its own copy: offsets shrinks as partitions are done.
	consume := make(map[int32]kgo.Offset, len(offsets))
	for p, o := range offsets {
		consume[p] = o
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: consume}),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		return fmt.Errorf("embedded: reading topic %s: %w", topic, err)
	}
	defer cl.Close()

	for len(offsets) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("embedded: reading topic %s: %w", topic, ctx.Err())
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if kerr.IsRetriable(err) {
				return
			}
			fetchErr = errors.Join(fetchErr, fmt.Errorf("partition %d: %w", p, err))
		})
		if fetchErr != nil {
			return fmt.Errorf("embedded: reading topic %s: %w", topic, fetchErr)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if _, want := offsets[r.Partition]; !want || r.Offset >= ends[r.Partition].end {
				return
			}
			fn(Message{Key: r.Key, Value: r.Value, Partition: r.Partition, Offset: r.Offset})
			if r.Offset+1 >= ends[r.Partition].end {
				delete(offsets, r.Partition)
			}
		})
	}
	return nil
}

type offsetRange struct{ start, end int64 }

// endOffsets returns the log start and high watermark of every partition of
// topic.
func endOffsets(ctx context.Context, cl *kgo.Client, topic string) (map[int32]offsetRange, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	meta.AllowAutoTopicCreation = false
	metaResp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("requesting metadata: %w", err)
	}
	if len(metaResp.Topics) != 1 {
		return nil, fmt.Errorf("requesting metadata: got %d topics, want 1", len(metaResp.Topics))
	}
	if err := kerr.ErrorForCode(metaResp.Topics[0].ErrorCode); err != nil {
		return nil, fmt.Errorf("requesting metadata: %w", err)
	}

	ranges := make(map[int32]offsetRange)
	for _, ts := range []int64{-2, -1} { // earliest, latest
		lo := kmsg.NewPtrListOffsetsRequest()
		lo.ReplicaID = -1
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = topic
		for _, p := range metaResp.Topics[0].Partitions {
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition = p.Partition
			lp.Timestamp = ts
			lt.Partitions = append(lt.Partitions, lp)
		}
		lo.Topics = append(lo.Topics, lt)
		loResp, err := lo.RequestWith(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("listing offsets: %w", err)
		}
		for _, t := range loResp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("listing offsets of partition %d: %w", p.Partition, err)
				}
				r := ranges[p.Partition]
				if ts == -2 {
					r.start = p.Offset
				} else {
					r.end = p.Offset
				}
				ranges[p.Partition] = r
			}
		}
	}
	return ranges, nil
}

func sortMessages(ms []Message) {
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].Partition != ms[j].Partition {
			return ms[i].Partition < ms[j].Partition
		}
		return ms[i].Offset < ms[j].Offset
	})
}
