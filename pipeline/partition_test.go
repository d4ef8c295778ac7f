package pipeline

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The producer's partitioner must place keys where Kafka's Java client does
// (toPositive(murmur2(key)) % partitions), so per-key order holds across tools. The hashes are
// the vectors of Kafka's own UtilsTest.testMurmur2.
func TestPartitionerMatchesJavaClient(t *testing.T) {
	vectors := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for key, hash := range vectors {
		for _, n := range []int{1, 3, 7, 12, 100} {
			want := int(uint32(hash)&0x7fffffff) % n
			if got := p.Partition(&kgo.Record{Key: []byte(key)}, n); got != want {
				t.Errorf("key %q over %d partitions: got %d, Java client puts it in %d", key, n, got, want)
			}
		}
	}
}
