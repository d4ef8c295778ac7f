package config

import (
	"os"
	"testing"
)

func TestExampleValidates(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("config.example.yaml", data, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config.example.yaml does not validate:\n%v", err)
	}
	p := cfg.Pipelines[0]
	if p.Name != "shop" || p.Source.Postgres == nil || p.Source.Postgres.Slot != "cdcd_shop" {
		t.Fatalf("unexpected pipeline: %+v", p)
	}
	if cfg.Kafka.Brokers[0] != "127.0.0.1:19092" || cfg.SchemaRegistry.URL != "http://127.0.0.1:18081/apis/ccompat/v7" {
		t.Fatalf("defaults of ${VAR:-default} not applied: %v %v", cfg.Kafka.Brokers, cfg.SchemaRegistry.URL)
	}
}
