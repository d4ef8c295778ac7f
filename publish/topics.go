package publish

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cdcd-dev/cdcd/dlq"
	"github.com/twmb/franz-go/pkg/kerr"
)

// recordOverhead is what a record batch adds around one record's key and value (batch header,
// record framing, headers); a record must fit the topic's limit with it.
const recordOverhead = 512

// batchLimit is the producer's batch cap for topic: the limit learned before its first record
// was produced (franz-go asks once per partition, when it first sees it).
func (s *Sink) batchLimit(topic string) int32 {
	l, ok := s.limitOf(topic)
	if !ok {
		l = s.cfg.MaxMessageBytes
	}
	return int32(min(max(l, 512), 1<<30))
}

func (s *Sink) limitOf(topic string) (int, bool) {
	s.topicsMu.RLock()
	defer s.topicsMu.RUnlock()
	l, ok := s.topics[topic]
	return l, ok
}

func (s *Sink) setLimit(topic string, limit int) {
	s.topicsMu.Lock()
	s.topics[topic] = limit
	s.topicsMu.Unlock()
}

// topicLimit creates topic if needed and returns the largest record it accepts: the smaller of
// its max.message.bytes and the producer's limit (kafka.max_message_bytes).
func (s *Sink) topicLimit(ctx context.Context, topic string) (int, error) {
	if l, ok := s.limitOf(topic); ok {
		return l, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := s.adm.CreateTopic(cctx, s.cfg.TopicPartitions, s.cfg.TopicReplication, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, &KafkaError{fmt.Errorf("creating topic %s: %w", topic, err)}
	}
	limit := s.cfg.MaxMessageBytes
	rcs, err := s.adm.DescribeTopicConfigs(cctx, topic)
	if err != nil {
		return 0, &KafkaError{fmt.Errorf("reading the configuration of topic %s: %w", topic, err)}
	}
	if rc, err := rcs.On(topic, nil); err == nil && rc.Err == nil {
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				if n, err := strconv.Atoi(*c.Value); err == nil && n < limit {
					limit = n
				}
			}
		}
	}
	s.setLimit(topic, limit)
	return limit, nil
}

func (s *Sink) ensureDLQ(ctx context.Context) error {
	if _, ok := s.limitOf(s.cfg.DLQTopic); ok {
		return nil
	}
	if err := dlq.EnsureTopic(ctx, s.adm, s.cfg.DLQTopic, s.cfg.TopicReplication, s.cfg.DLQMaxMessageBytes); err != nil {
		return &KafkaError{err}
	}
	s.setLimit(s.cfg.DLQTopic, s.cfg.DLQMaxMessageBytes)
	return nil
}
