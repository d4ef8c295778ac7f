package config

import (
	"strings"
	"testing"
	"time"
)

func TestFlightRecorderOption(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(base), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Diagnostics.FlightRecorder != nil {
		t.Fatal("the flight recorder is on by default")
	}
	cfg, err = Parse("c.yaml", []byte(base+"diagnostics:\n  flight_recorder:\n    threshold: 500ms\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	fr := cfg.Diagnostics.FlightRecorder
	if fr.Threshold.D != 500*time.Millisecond || fr.Dir == "" || fr.Window.D != 10*time.Second || fr.Cooldown.D != time.Minute || fr.MaxFiles != 10 || fr.MaxBytes.N != 32<<20 {
		t.Fatalf("defaults not applied: %+v", fr)
	}
	bad := base + `diagnostics:
  flight_recorder:
    dir: /tmp/x
    cooldown: -1s
    max_files: -2
`
	_, err = Parse("c.yaml", []byte(bad), noEnv)
	if err == nil {
		t.Fatal("a flight recorder without threshold was accepted")
	}
	for _, want := range []string{"diagnostics.flight_recorder.threshold", "diagnostics.flight_recorder.cooldown", "c.yaml:14", "diagnostics.flight_recorder.max_files", "c.yaml:15"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
}

func TestTransactionMetadataOption(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(base), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pipelines[0].TransactionMetadata.Enabled {
		t.Fatal("transaction metadata is on by default")
	}
	_, err = Parse("c.yaml", []byte(base+"    transaction_metadata: {enabled: true, topic: \"bad topic\"}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "pipelines[0].transaction_metadata.topic") {
		t.Fatalf("a bad topic name: %v", err)
	}
	_, err = Parse("c.yaml", []byte(base+"    transaction_metadata: sure\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "pipelines[0].transaction_metadata") {
		t.Fatalf("transaction_metadata: sure was accepted: %v", err)
	}
	cfg, err = Parse("c.yaml", []byte(base+"    transaction_metadata: true\n"), noEnv)
	if err != nil || !cfg.Pipelines[0].TransactionMetadata.Enabled || cfg.Pipelines[0].TransactionMetadata.Topic != "shop.transaction" {
		t.Fatalf("transaction_metadata: true: %v %+v", err, cfg)
	}
	_, err = Parse("c.yaml", []byte(base+"    transaction_metadata: {enabled: true, topics: x}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "topics") {
		t.Fatalf("an unknown key under transaction_metadata was accepted: %v", err)
	}
}
