package publish

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// HangingTransaction is a transaction of the pipeline's own producer that a partition of the
// offsets topic still holds open although no instance can have it open any more.
type HangingTransaction struct {
	Topic     string
	Partition int32
	// StartOffset is the offset of its first record: the partition's last stable offset
	// cannot pass it, and read_committed readers do not see its records.
	StartOffset int64
	ProducerID  int64
}

func (h *HangingTransaction) String() string {
	return fmt.Sprintf("%s[%d] from offset %d (producer id %d)", h.Topic, h.Partition, h.StartOffset, h.ProducerID)
}

// FindHangingTransaction looks, after Fence, for a transaction of the pipeline's producer id
// that the offsets topic's partition still holds open. Fence ended whatever transaction an
// older instance had open (the coordinator wrote its markers before answering), so such a
// transaction is hanging: its coordinator finished it, but the partition never received its
// marker (a broker fault, e.g. a broker stopped while it wrote markers). Its records, the
// pipeline's offsets record among them, stay invisible, so the committed position read looks
// older than what the source was acknowledged for. It returns nil when there is none, or when
// the broker cannot say (DescribeProducers needs Kafka 2.8 and READ on the topic): then the
// error says why.
func (s *Sink) FindHangingTransaction(ctx context.Context) (*HangingTransaction, error) {
	if s.cl == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pid, _, err := s.cl.ProducerID(ctx)
	if err != nil {
		return nil, err
	}
	ps, err := s.adm.DescribeProducers(ctx, kadm.TopicsSet{s.cfg.OffsetsTopic: {0: {}}})
	if err != nil {
		return nil, err
	}
	return hangingIn(ps, pid), nil
}

// hangingIn finds pid's open transaction among the described producers.
func hangingIn(ps kadm.DescribedProducersTopics, pid int64) *HangingTransaction {
	var h *HangingTransaction
	ps.EachProducer(func(p kadm.DescribedProducer) {
		if h == nil && p.ProducerID == pid && p.CurrentTxnStartOffset >= 0 {
			h = &HangingTransaction{Topic: p.Topic, Partition: p.Partition, StartOffset: p.CurrentTxnStartOffset, ProducerID: pid}
		}
	})
	return h
}
