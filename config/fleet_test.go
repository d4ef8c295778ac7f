package config

import (
	"testing"
	"time"
)

func TestFleetDefaults(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(base+"fleet:\n  enabled: true\n  group: prod\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Fleet
	if f.Topic != "_cdcd_fleet.prod" || f.SessionTimeout.D != 10*time.Second || f.HeartbeatInterval.D != 2*time.Second {
		t.Fatalf("fleet defaults: %+v", f)
	}
	off, err := Parse("c.yaml", []byte(base), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if off.Fleet.Enabled || off.Fleet.Topic != "" {
		t.Fatalf("fleet is on without being asked for: %+v", off.Fleet)
	}
}

func TestFleetRefused(t *testing.T) {
	checkMalformed(t, []malformed{
		{name: "no group", yaml: base + "fleet:\n  enabled: true\n",
			want: []want{{path: "fleet.group", line: 11, msg: "needs a group", fix: "consumer group"}}},
		{name: "bad group", yaml: base + "fleet:\n  enabled: true\n  group: a b\n",
			want: []want{{path: "fleet.group", line: 13, msg: "cannot name a group", fix: "letters, digits"}}},
		{name: "heartbeat not below session", yaml: base + "fleet:\n  enabled: true\n  group: g\n  session_timeout: 6s\n  heartbeat_interval: 6s\n",
			want: []want{{path: "fleet.heartbeat_interval", line: 15, msg: "not below session_timeout", fix: "third of session_timeout"}}},
	})
}
