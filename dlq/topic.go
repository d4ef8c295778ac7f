package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// EnsureTopic creates the dead-letter topic if it does not exist: one partition (dead letters
// keep one order, and replay progress is one offset), kept forever, with room for large rows.
func EnsureTopic(ctx context.Context, adm *kadm.Client, topic string, replication int16, maxMessageBytes int) error {
	resp, err := adm.CreateTopic(ctx, 1, replication, map[string]*string{
		"retention.ms":      kadm.StringPtr("-1"),
		"max.message.bytes": kadm.StringPtr(strconv.Itoa(maxMessageBytes)),
	}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating dead-letter topic %s: %w", topic, err)
	}
	return nil
}
