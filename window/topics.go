package window

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic names of a job's internal topics.
func RepartitionTopic(job string) string { return "cdcd-window." + job + ".repartition" }
func ChangelogTopic(job string) string   { return "cdcd-window." + job + ".changelog" }
func GroupID(job string) string          { return "cdcd-window-" + job }

// TopicPlan is an internal topic of a job and the configuration its contents need. The job
// creates it so, and sets Required on a topic that exists without it; `cdcd check` reports a
// topic that lacks it.
type TopicPlan struct {
	Topic string
	// Create is the configuration of a topic the job creates.
	Create map[string]string
	// Required must hold on the topic, with why.
	Required map[string]string
	Why      string
}

// InternalTopics are the job's repartition and changelog topics.
//
// The repartition topic keeps its records until the job has processed them: retention by time
// or size could delete records whose input offsets are committed already (silent loss), so it
// has none, and the job deletes (DeleteRecords) what its group's committed offsets passed, as
// Kafka Streams does. The changelog is compacted and keeps the latest record per key forever.
func InternalTopics(job string) []TopicPlan {
	return []TopicPlan{
		{Topic: RepartitionTopic(job),
			Create:   map[string]string{"retention.ms": "-1", "retention.bytes": "-1"},
			Required: map[string]string{"retention.ms": "-1", "retention.bytes": "-1"},
			Why:      "records the job has not processed yet must not be deleted by retention (their input offsets are committed already); the job deletes what it processed"},
		{Topic: ChangelogTopic(job),
			Create:   map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "segment.ms": "600000"},
			Required: map[string]string{"cleanup.policy": "compact"},
			Why:      "the job's state is the latest record per key"},
	}
}

// CreateConfig is Create as kadm's CreateTopic takes it.
func (p TopicPlan) CreateConfig() map[string]*string { return ptrs(p.Create) }

func ptrs(m map[string]string) map[string]*string {
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = kadm.StringPtr(v)
	}
	return out
}

// Lacking describes the topic and returns what the plan requires that it lacks.
func (p TopicPlan) Lacking(ctx context.Context, adm *kadm.Client) (map[string]string, error) {
	rc, err := adm.DescribeTopicConfigs(ctx, p.Topic)
	var cfg kadm.ResourceConfig
	if err == nil {
		cfg, err = rc.On(p.Topic, nil)
	}
	if err == nil {
		err = cfg.Err
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: describing the configuration of %s: %w", p.Topic, err)
	}
	return p.Missing(cfg.Configs), nil
}

// Missing returns what the plan requires that configs (a topic's described configuration)
// lack.
func (p TopicPlan) Missing(configs []kadm.Config) map[string]string {
	have := map[string]string{}
	for _, c := range configs {
		if c.Value != nil {
			have[c.Key] = *c.Value
		}
	}
	out := map[string]string{}
	for k, v := range p.Required {
		if have[k] != v {
			out[k] = v
		}
	}
	return out
}

// enforceTopicConfigs sets what a plan requires on topics that exist without it (created by an
// older cdcd, or by hand).
func enforceTopicConfigs(ctx context.Context, adm *kadm.Client, plans []TopicPlan) error {
	for _, p := range plans {
		missing, err := p.Lacking(ctx, adm)
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			continue
		}
		var alter []kadm.AlterConfig
		for k, v := range missing {
			alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)})
		}
		resp, err := adm.AlterTopicConfigs(ctx, alter, p.Topic)
		if err == nil {
			_, err = resp.On(p.Topic, nil)
		}
		if err != nil {
			return fmt.Errorf("kafka: setting %v on %s (%s): %w; fix: grant ALTER_CONFIGS on the topic, or set it by hand", missing, p.Topic, p.Why, err)
		}
	}
	return nil
}

// purgeEvery is how often the job deletes processed repartition records.
const purgeEvery = 30 * time.Second

// deleteProcessed deletes, in the repartition partitions this instance owns, the records its
// group's committed offsets have passed: their state is in the changelog.
func (j *Job) deleteProcessed(ctx context.Context, cl *kgo.Client) {
	owned := j.owned()
	if len(owned) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	topic := RepartitionTopic(j.spec.Name)
	offs, err := adm.FetchOffsetsForTopics(ctx, GroupID(j.spec.Name), topic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		if !errors.Is(err, kerr.GroupIDNotFound) {
			j.log.Debug("reading the group's offsets to delete processed repartition records failed", "err", err)
		}
		return
	}
	del := kadm.Offsets{}
	for _, p := range owned {
		if o, ok := offs.Lookup(topic, p); ok && o.At > 0 {
			del.Add(kadm.Offset{Topic: topic, Partition: p, At: o.At})
		}
	}
	if len(del) == 0 {
		return
	}
	resp, err := adm.DeleteRecords(ctx, del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		j.log.Debug("deleting processed repartition records failed", "err", err)
	}
}

// errNotVisible: a topic just created is not described with its partitions yet.
var errNotVisible = errors.New("not visible yet after their creation")

// visibleWithin bounds untilVisible's wait.
const visibleWithin = 5 * time.Second

// untilVisible calls fn until it returns something other than a topic's absence, for
// visibleWithin at most: metadata of a topic just created reaches the brokers a moment later.
func untilVisible(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(visibleWithin)
	for {
		err := fn()
		if err == nil || !errors.Is(err, errNotVisible) && !errors.Is(err, kerr.UnknownTopicOrPartition) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (j *Job) createTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(j.cfg.KafkaOpts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(ctx, j.spec.Topics...)
	if err != nil {
		return fmt.Errorf("kafka: describing input topics: %w", err)
	}
	parts := j.cfg.Partitions
	for _, t := range j.spec.Topics {
		td, ok := tds[t]
		if !ok || td.Err != nil {
			return &waitError{fmt.Errorf("input topic %s does not exist yet: waiting for the pipeline that writes it", t)}
		}
		if j.cfg.Partitions == 0 {
			parts = max(parts, int32(len(td.Partitions)))
		}
	}
	j.expect = j.expect[:0]
	for _, t := range j.spec.Topics {
		for _, p := range tds[t].Partitions.Numbers() {
			j.expect = append(j.expect, Origin{Topic: t, Partition: p})
		}
	}
	create := func(topic string, n int32, cfg map[string]*string) error {
		resp, err := adm.CreateTopic(ctx, n, j.cfg.Replication, cfg, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: creating topic %s: %w", topic, err)
		}
		return nil
	}
	plans := InternalTopics(j.spec.Name)
	for _, p := range plans {
		cfg := ptrs(p.Create)
		if p.Topic == ChangelogTopic(j.spec.Name) {
			cfg["max.message.bytes"] = kadm.StringPtr(strconv.Itoa(j.maxMessageBytes()))
		}
		if err := create(p.Topic, parts, cfg); err != nil {
			return err
		}
	}
	// Topics just created may not be known yet to the broker that answers: wait a moment
	// rather than fail the attempt (which is retried after a second).
	if err := untilVisible(ctx, func() error { return enforceTopicConfigs(ctx, adm, plans) }); err != nil {
		return err
	}
	// The state lives in changelog partition p with repartition partition p: their counts
	// must agree.
	var rp, cp int
	err = untilVisible(ctx, func() error {
		td, err := adm.ListTopics(ctx, RepartitionTopic(j.spec.Name), ChangelogTopic(j.spec.Name))
		if err != nil {
			return fmt.Errorf("kafka: describing internal topics: %w", err)
		}
		rp, cp = len(td[RepartitionTopic(j.spec.Name)].Partitions), len(td[ChangelogTopic(j.spec.Name)].Partitions)
		if rp == 0 || cp == 0 {
			return fmt.Errorf("topics %s (%d partitions) and %s (%d) are %w",
				RepartitionTopic(j.spec.Name), rp, ChangelogTopic(j.spec.Name), cp, errNotVisible)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rp != cp {
		return &FatalError{Err: fmt.Errorf("topics %s (%d partitions) and %s (%d) must have the same partitions; fix: %s",
			RepartitionTopic(j.spec.Name), rp, ChangelogTopic(j.spec.Name), cp, InternalPartitionsFix(j.spec.Name))}
	}
	j.parts = int32(rp)
	outParts := j.cfg.OutputPartitions
	if outParts == 0 {
		outParts = -1 // the broker's default
	}
	if err := create(j.spec.Output, outParts, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}); err != nil {
		return err
	}
	if j.spec.Late != "" {
		if err := create(j.spec.Late, outParts, nil); err != nil {
			return err
		}
	}
	if j.spec.DeadLetter != "" {
		return create(j.spec.DeadLetter, 1, DeadLetterTopicConfig(j.cfg.MaxMessageBytes))
	}
	return nil
}

// partitioner sends changelog and repartition records to the partition set on them (the
// state's own partition, the group's partition) and everything else by key, as Kafka's Java
// client does.
type partitioner struct {
	changelog   string
	repartition string
	byKey       kgo.Partitioner
}

func (p partitioner) ForTopic(t string) kgo.TopicPartitioner {
	if t == p.changelog || t == p.repartition {
		return kgo.ManualPartitioner().ForTopic(t)
	}
	return p.byKey.ForTopic(t)
}

// defaultMaxMessageBytes is the record limit when Config.MaxMessageBytes is 0 (Kafka's).
const defaultMaxMessageBytes = 1 << 20

// recordOverhead is what a record batch adds to one record's key and value.
const recordOverhead = 512

func (j *Job) maxMessageBytes() int {
	if j.cfg.MaxMessageBytes > 0 {
		return j.cfg.MaxMessageBytes
	}
	return defaultMaxMessageBytes
}

// StateRecordError: one window's state is larger than a changelog record may be. Retrying
// cannot help (the same input builds the same state), so the job stops.
type StateRecordError struct {
	Job          string
	Partition    int32
	Bytes, Limit int
}

func (e *StateRecordError) Error() string {
	return fmt.Sprintf("window job %s: the state of one window in partition %d takes %d bytes, over the changelog's record limit of %d bytes "+
		"(most of it is a value set: count_distinct, or min, max, first and last in table mode); the job stopped rather than retry input that builds the same window; "+
		"fix: raise kafka.max_message_bytes (the job gives the changelog topic %s that max.message.bytes when it creates it; raise it there too if it exists), "+
		"or let windows hold fewer distinct values (a shorter window.size, a finer group_by, an aggregate without a value set)",
		e.Job, e.Partition, e.Bytes, e.Limit, ChangelogTopic(e.Job))
}

// checkRecordSize returns a FatalError if the changelog record kv is over the record limit.
func (j *Job) checkRecordSize(p int32, kv KV) error {
	n := len(kv.Key) + len(kv.Value) + recordOverhead
	if n <= j.maxMessageBytes() {
		return nil
	}
	return &FatalError{Err: &StateRecordError{Job: j.spec.Name, Partition: p, Bytes: len(kv.Key) + len(kv.Value), Limit: j.maxMessageBytes() - recordOverhead}}
}
