// Command txnbench measures the Kafka side of cdcd's commit path alone: a transactional
// franz-go producer (linger 0, like cdcd's sink) that writes -records small records over
// -partitions partitions of a data topic, then one record to a one-partition "offsets" topic,
// then Flush and EndTransaction, -txns times at -rate transactions/s. It reports the p50/p95/p99
// of the Flush and EndTransaction durations and of their sum, so a latency tail can be split
// between PostgreSQL, cdcd and the broker. With -preregister, a record is written to the
// offsets partition when the transaction opens (as cdcd could do), so the commit's own
// offsets record finds its partition already in the transaction.
//
//	go run ./cmd/txnbench -txns 2000 -rate 100 -records 30 -partitions 3
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	broker := flag.String("kafka", "127.0.0.1:19092", "bootstrap broker")
	txns := flag.Int("txns", 2000, "transactions")
	rate := flag.Int("rate", 100, "transactions per second (0: back to back)")
	records := flag.Int("records", 30, "data records per transaction")
	partitions := flag.Int("partitions", 3, "partitions of the data topic")
	prereg := flag.Bool("preregister", false, "write to the offsets partition when the transaction opens")
	flag.Parse()
	if err := run(*broker, *txns, *rate, *records, *partitions, *prereg); err != nil {
		fmt.Fprintln(os.Stderr, "txnbench:", err)
		os.Exit(1)
	}
}

func run(broker string, txns, rate, records, partitions int, prereg bool) error {
	ctx := context.Background()
	stamp := time.Now().Format("150405.000")
	data, offs := "txnbench."+stamp+".data", "txnbench."+stamp+".offsets"
	admCl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, int32(partitions), -1, nil, data); err != nil {
		return err
	}
	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, offs); err != nil {
		return err
	}
	defer adm.DeleteTopics(context.Background(), data, offs) //nolint:errcheck
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.TransactionalID("txnbench-"+stamp), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	time.Sleep(time.Second) // topic metadata
	var flushD, endD, totalD []time.Duration
	val := make([]byte, 120)
	interval := time.Duration(0)
	if rate > 0 {
		interval = time.Second / time.Duration(rate)
	}
	kafkaPID := findProcess("kafka.Kafka")
	brokerCPU0, selfCPU0 := procCPU(kafkaPID), procCPU(os.Getpid())
	started := time.Now()
	next := time.Now()
	for i := 0; i < txns; i++ {
		if interval > 0 {
			time.Sleep(time.Until(next))
			next = next.Add(interval)
		}
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		if prereg {
			cl.Produce(ctx, &kgo.Record{Topic: offs, Key: []byte("p"), Value: []byte("open")}, nil)
		}
		for j := 0; j < records; j++ {
			cl.Produce(ctx, &kgo.Record{Topic: data, Value: val}, nil)
		}
		t0 := time.Now()
		cl.Produce(ctx, &kgo.Record{Topic: offs, Key: []byte("p"), Value: []byte(fmt.Sprint(i))}, nil)
		if err := cl.Flush(ctx); err != nil {
			return err
		}
		t1 := time.Now()
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return err
		}
		t2 := time.Now()
		flushD, endD, totalD = append(flushD, t1.Sub(t0)), append(endD, t2.Sub(t1)), append(totalD, t2.Sub(t0))
	}
	q := func(ds []time.Duration) string {
		slices.Sort(ds)
		at := func(f float64) time.Duration { return ds[min(len(ds)-1, int(f*float64(len(ds))))] }
		return fmt.Sprintf("p50 %6.2f ms  p95 %6.2f ms  p99 %6.2f ms  max %6.2f ms", ms(at(0.5)), ms(at(0.95)), ms(at(0.99)), ms(ds[len(ds)-1]))
	}
	took := time.Since(started)
	brokerCPU, selfCPU := procCPU(kafkaPID)-brokerCPU0, procCPU(os.Getpid())-selfCPU0
	fmt.Printf("%d transactions at %d/s, %d records over %d partitions + 1 offsets record, preregister=%v\n", txns, rate, records, partitions, prereg)
	fmt.Printf("  in %.1f s: broker CPU %.2f s (%.2f ms per transaction, %.2f cores), this producer %.2f s (%.2f ms per transaction)\n",
		took.Seconds(), brokerCPU, brokerCPU/float64(txns)*1000, brokerCPU/took.Seconds(), selfCPU, selfCPU/float64(txns)*1000)
	fmt.Printf("  flush (incl. offsets record): %s\n  end transaction:              %s\n  flush + commit:               %s\n", q(flushD), q(endD), q(totalD))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procCPU is a process's user+system CPU seconds (0 when unknown).
func procCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(ut+st) / 100
}

// findProcess returns the pid of the first process whose command line contains s, or 0.
func findProcess(s string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if b, err := os.ReadFile(d + "/cmdline"); err == nil && bytes.Contains(b, []byte(s)) {
			return pid
		}
	}
	return 0
}
