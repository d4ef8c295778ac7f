package config

import (
	"os"
	"strings"
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

// The commented windows example in config.example.yaml, uncommented, is a valid job.
func TestExampleWindowsValidates(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "\n# windows:\n")
	if i < 0 {
		t.Fatal("config.example.yaml has no commented windows example")
	}
	var b strings.Builder
	b.WriteString(text[:strings.Index(text, "\nwindows: []")+1])
	for _, line := range strings.Split(text[i+1:], "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		b.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ") + "\n")
	}
	cfg, err := Parse("config.example.yaml", []byte(b.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("the windows example does not validate:\n%v\n%s", err, b.String())
	}
	if len(cfg.Windows) != 1 || len(cfg.Windows[0].Aggregates) != 3 || cfg.Windows[0].IdleTimeout.D.String() != "30s" {
		t.Fatalf("unexpected job: %+v", cfg.Windows)
	}
}
