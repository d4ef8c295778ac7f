package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// `cdcd check` judges an existing offsets topic: one that is not compacted loses positions (a
// failure), one that keeps transaction markers for a day slows every start (a warning naming
// the command that fixes it); the topic cdcd creates passes.
func TestCheckOffsetsTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	create := func(topic string, configs map[string]*string) {
		t.Helper()
		resp, err := adm.CreateTopic(ctx, 1, 1, configs, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := offsets.EnsureTopic(ctx, adm, "_ours", 1); err != nil {
		t.Fatal(err)
	}
	create("_day", map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "delete.retention.ms": kadm.StringPtr("86400000")})
	create("_deleting", map[string]*string{"cleanup.policy": kadm.StringPtr("delete")})

	for _, tc := range []struct {
		topic  string
		status checks.Status
		want   string
	}{
		{"_missing", checks.OK, "does not exist yet"},
		{"_ours", checks.OK, "compacted"},
		{"_day", checks.Warn, "--entity-name _day --add-config delete.retention.ms=900000"},
		{"_deleting", checks.Fail, "--add-config cleanup.policy=compact"},
	} {
		var rep checks.Report
		checkOffsetsTopic(ctx, adm, tc.topic, rep.Scoped("kafka"))
		if len(rep.Results) == 0 {
			t.Fatalf("%s: no result", tc.topic)
		}
		worst := rep.Results[0]
		for _, r := range rep.Results {
			if r.Status > worst.Status {
				worst = r
			}
		}
		if worst.Status != tc.status || !strings.Contains(worst.Detail+" "+worst.Fix, tc.want) {
			t.Errorf("%s: %s %q (fix %q); want %s naming %q", tc.topic, worst.Status, worst.Detail, worst.Fix, tc.status, tc.want)
		}
		// cdcd run logs the same at start-up: nothing for a good topic, the problem and its
		// fix for another.
		var buf bytes.Buffer
		logOffsetsTopicProblems(ctx, adm, tc.topic, slog.New(slog.NewTextHandler(&buf, nil)))
		switch out := buf.String(); {
		case tc.status == checks.OK && out != "":
			t.Errorf("%s: run logged %q for a good topic", tc.topic, out)
		case tc.status == checks.Warn && (!strings.Contains(out, "level=WARN") || !strings.Contains(out, tc.want)):
			t.Errorf("%s: run logged %q", tc.topic, out)
		case tc.status == checks.Fail && (!strings.Contains(out, "level=ERROR") || !strings.Contains(out, tc.want)):
			t.Errorf("%s: run logged %q", tc.topic, out)
		}
	}
}
