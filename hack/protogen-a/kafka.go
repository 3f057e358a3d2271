package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaBroker runs franz-go's in-memory Kafka broker (kfake) on one port,
// with the topics the client uses.
func kafkaBroker(args []string) error {
	fs := flag.NewFlagSet("kafka-broker", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:9092", "listen address")
	duration := fs.Duration("duration", 10*time.Minute, "stop after")
	fs.Parse(args)
	host, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return err
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, portStr))
		}),
		kfake.SeedTopics(2, "orders", "payments"),
	)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("listening on", c.ListenAddrs())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(*duration):
	}
	return nil
}

// kafkaLog counts, through kgo's hooks, what the client wrote and read:
// requests and responses by API, and the record batches it produced and
// fetched.
type kafkaLog struct {
	mu sync.Mutex
	c  counts
}

var (
	_ kgo.HookBrokerWrite         = (*kafkaLog)(nil)
	_ kgo.HookBrokerRead          = (*kafkaLog)(nil)
	_ kgo.HookProduceBatchWritten = (*kafkaLog)(nil)
	_ kgo.HookFetchBatchRead      = (*kafkaLog)(nil)
)

func (l *kafkaLog) add(n int, path ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.c.add(n, append([]string{"kafka"}, path...)...)
}

func (l *kafkaLog) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil {
		l.add(1, "requests", kmsg.NameForKey(key))
	}
}

func (l *kafkaLog) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil {
		l.add(1, "responses", kmsg.NameForKey(key))
	}
}

func (l *kafkaLog) OnProduceBatchWritten(_ kgo.BrokerMetadata, topic string, _ int32, m kgo.ProduceBatchMetrics) {
	l.add(1, "produced", "batches")
	l.add(m.NumRecords, "produced", "records")
	l.add(m.NumRecords, "produced", "topics", topic)
	l.add(1, "produced", "compression", codec(m.CompressionType))
}

func (l *kafkaLog) OnFetchBatchRead(_ kgo.BrokerMetadata, topic string, _ int32, m kgo.FetchBatchMetrics) {
	l.add(1, "fetched", "batches")
	l.add(m.NumRecords, "fetched", "records")
	l.add(m.NumRecords, "fetched", "topics", topic)
	l.add(1, "fetched", "compression", codec(m.CompressionType))
}

func codec(c uint8) string {
	return [...]string{"none", "gzip", "snappy", "lz4", "zstd"}[min(int(c), 4)]
}

// kafkaClient produces n records in each compression, to two topics, then
// consumes them all in a consumer group that commits its offsets, and asks
// for the metadata of a topic that does not exist.
func kafkaClient(args []string) error {
	fs := flag.NewFlagSet("kafka-client", flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "seed broker")
	n := fs.Int("n", 8, "records per compression codec")
	logPath := fs.String("log", "", "write counts here")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := &kafkaLog{c: counts{}}

	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(),
		kgo.Lz4Compression(), kgo.ZstdCompression()}
	total := 0
	for i, cc := range codecs {
		cl, err := kgo.NewClient(kgo.SeedBrokers(*brokers), kgo.WithHooks(log), kgo.ClientID("shark-producer-"+strconv.Itoa(i)),
			kgo.ProducerBatchCompression(cc), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
		if err != nil {
			return err
		}
		for j := 0; j < *n; j += 2 { // two records per produce call
			topic := "orders"
			if j%4 == 2 {
				topic = "payments"
			}
			// Repetitive values, so that every codec shrinks them: kgo
			// sends a batch uncompressed when compressing does not help.
			pad := strings.Repeat(`"item":"book",`, 20)
			recs := []*kgo.Record{
				{Topic: topic, Key: []byte("k" + strconv.Itoa(j)), Value: []byte(`{` + pad + `"order":` + strconv.Itoa(j) + `}`)},
				{Topic: topic, Key: []byte("k" + strconv.Itoa(j)), Value: []byte(`{` + pad + `"order":` + strconv.Itoa(j+1) + `}`)},
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				cl.Close()
				return fmt.Errorf("produce: %w", err)
			}
			total += len(recs)
		}
		cl.Close()
	}

	if err := consume(ctx, *brokers, log, total); err != nil {
		return err
	}
	if err := missingTopic(ctx, *brokers, log); err != nil {
		return err
	}
	if *logPath == "" {
		return nil
	}
	return log.c.write(*logPath)
}

// consume reads want records in the consumer group "billing", committing
// what it read, then leaves the group.
func consume(ctx context.Context, brokers string, log *kafkaLog, want int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.WithHooks(log), kgo.ClientID("shark-consumer"),
		kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders", "payments"), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	got := 0
	for got < want {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consumed %d of %d records: %w", got, want, err)
		}
		fetches.EachError(func(t string, p int32, err error) { fmt.Fprintln(os.Stderr, "fetch", t, p, err) })
		got += fetches.NumRecords()
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	if got != want {
		return fmt.Errorf("consumed %d records, want %d", got, want)
	}
	return nil
}

// missingTopic asks for a topic that does not exist, for an error code.
func missingTopic(ctx context.Context, brokers string, log *kafkaLog) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.WithHooks(log), kgo.ClientID("shark-admin"))
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr("missing")
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 3 {
		return fmt.Errorf("metadata for a missing topic: %+v", resp.Topics)
	}
	return nil
}
