package config

import (
	"slices"
	"testing"
)

// A broker list from one comma-separated variable (the usual Kubernetes pattern), written as
// a scalar or as the one element of a list.
func TestBrokersFromOneCommaSeparatedVariable(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "KAFKA_BROKERS" {
			return "k1:9092, k2:9092,k3:9092", true
		}
		return "", false
	}
	want := []string{"k1:9092", "k2:9092", "k3:9092"}
	for _, brokers := range []string{`${KAFKA_BROKERS}`, `["${KAFKA_BROKERS}"]`, `"${KAFKA_BROKERS}"`, `[k1:9092, "k2:9092,k3:9092"]`} {
		y := `kafka:
  brokers: ` + brokers + `
schema_registry:
  url: http://127.0.0.1:18081
pipelines:
  - name: shop
    source:
      postgres:
        dsn: postgres://cdcd@db:5432/shop
        tables: [public.orders]
`
		cfg, err := Parse("c.yaml", []byte(y), lookup)
		if err != nil {
			t.Errorf("brokers: %s: %v", brokers, err)
			continue
		}
		if !slices.Equal(cfg.Kafka.Brokers, want) {
			t.Errorf("brokers: %s gave %q, want %q", brokers, cfg.Kafka.Brokers, want)
		}
	}
}
