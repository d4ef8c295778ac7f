package topics

import (
	"strings"
	"testing"
)

// The transaction metadata topic is a topic the pipeline writes: a table routed onto it is
// refused, naming both.
func TestTransactionTopicCollides(t *testing.T) {
	cfg := parse(t, head+`  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public.orders]
    topics: {overrides: {public.orders: shop.transaction}}
    transaction_metadata: true
`)
	if cfg.Pipelines[0].TransactionMetadata.Topic != "shop.transaction" {
		t.Fatalf("default topic %q", cfg.Pipelines[0].TransactionMetadata.Topic)
	}
	err := Check(cfg)
	if err == nil || !strings.Contains(err.Error(), "the transaction metadata topic of pipeline shop") || !strings.Contains(err.Error(), "table public.orders") {
		t.Fatalf("Check = %v; want the collision of the transaction topic and public.orders", err)
	}
	cfg = parse(t, head+`  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public.orders]
    transaction_metadata: {enabled: true, topic: shop.tx}
`)
	if err := Check(cfg); err != nil || cfg.Pipelines[0].TransactionMetadata.Topic != "shop.tx" {
		t.Fatalf("Check = %v, topic %q", err, cfg.Pipelines[0].TransactionMetadata.Topic)
	}
}
