package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

const dlqDDL = `
CREATE TABLE pay (id int PRIMARY KEY, amount numeric(10,2), blob text);
CREATE TABLE shape (id int PRIMARY KEY, a bigint);`

func headerOf(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// bigText is about n bytes of text that does not compress (so it is TOASTed out of line).
func bigText(n int) string {
	return fmt.Sprintf(`(SELECT string_agg(md5(g::text || random()::text), '') FROM generate_series(1, %d) g)`, n/32)
}

// TestDeadLetters produces each poison class for real with on_error: dlq — a NaN in a
// numeric(10,2), a 1.5 MB row against a 1 MB topic, an incompatible ALTER under FULL — and
// checks that each lands in the dead-letter topic with its headers while the rows around it are
// published and the pipeline stays ready; then that a SIGKILL around a batch with a dead letter
// keeps both exactly once; then that replay, once the causes are fixed, publishes each dead
// letter once, and a second replay nothing.
func TestDeadLetters(t *testing.T) {
	s, ctx, dsn, db := setup(t, 8*time.Minute, "cdcd_dlq", dlqDDL)
	name := uniqueName("dlq")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.pay", "public.shape"}, "    on_error: dlq\n"))
	d.waitReady(90 * time.Second)
	exec := func(sql string) {
		t.Helper()
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO pay VALUES (1, 1.50, 'ok'); INSERT INTO shape VALUES (1, 1)`)
	payTopic, shapeTopic, dlqTopic := name+".public.pay", name+".public.shape", name+".dlq"
	data := newConsumer(t, s, payTopic, shapeTopic)
	if got := data.read(t, 2, time.Minute, 0); len(got) != 2 {
		t.Fatalf("first rows not published")
	}
	reg, _ := sr.NewClient(sr.URLs(s.registry))
	for _, r := range reg.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, shapeTopic+"-value") {
		if r.Err != nil {
			t.Fatalf("setting FULL: %v", r.Err)
		}
	}
	exec(`INSERT INTO pay VALUES (2, 'NaN', 'nan')`)                  // value_not_representable
	exec(`INSERT INTO pay VALUES (3, 3, 'after nan')`)                // published
	exec(`INSERT INTO pay VALUES (4, 4, ` + bigText(1_500_000) + `)`) // record_too_large
	exec(`INSERT INTO pay VALUES (5, 5, 'after big')`)                // published
	exec(`ALTER TABLE shape ALTER COLUMN a TYPE int`)                 // FULL refuses long -> int
	exec(`INSERT INTO shape VALUES (2, 2)`)                           // schema_rejected
	exec(`INSERT INTO pay VALUES (6, 6, 'after refused schema')`)     // published

	letters := newConsumer(t, s, dlqTopic)
	dl := letters.read(t, 3, 2*time.Minute, 2*time.Second)
	if len(dl) != 3 {
		t.Fatalf("dead letters: got %d, want 3\n%s", len(dl), d.Logs())
	}
	wantClass := []string{"value_not_representable", "record_too_large", "schema_rejected"}
	for i, r := range dl {
		if c := headerOf(r, "cdcd.error.class"); c != wantClass[i] {
			t.Errorf("dead letter %d: class %q, want %q", i, c, wantClass[i])
		}
		for _, h := range []string{"cdcd.error.message", "cdcd.pipeline", "cdcd.source.table", "cdcd.source.position", "cdcd.topic", "cdcd.schema.subject", "cdcd.version", "cdcd.time"} {
			if headerOf(r, h) == "" {
				t.Errorf("dead letter %d lacks header %s", i, h)
			}
		}
		if !strings.HasPrefix(string(r.Key), `{"id":`) || !strings.Contains(string(r.Value), `"after":{`) {
			t.Errorf("dead letter %d: key %s value %.200s", i, r.Key, r.Value)
		}
	}
	if m := headerOf(dl[2], "cdcd.error.message"); !strings.Contains(m, shapeTopic+"-value") {
		t.Errorf("schema refusal does not name the subject: %s", m)
	}
	if n := len(dl[1].Value); n < 1_500_000 {
		t.Errorf("the oversize row's dead letter holds %d bytes: the row is not kept whole", n)
	}
	got := data.read(t, 3, time.Minute, 2*time.Second)
	ids := map[int64]bool{}
	for _, r := range got {
		if r.Topic == payTopic && r.Value != nil {
			ids[avroLong(r.Key, 5)] = true
		}
	}
	if len(got) != 3 || !ids[3] || !ids[5] || !ids[6] {
		t.Fatalf("rows around the dead letters: got %d records %v, want pay 3, 5, 6", len(got), ids)
	}
	// Later changes of a dead-lettered key keep flowing, marked with the dead letter's position.
	exec(`UPDATE pay SET amount = 2 WHERE id = 2`)
	later := data.read(t, 1, time.Minute, time.Second)
	if len(later) != 1 || avroLong(later[0].Key, 5) != 2 {
		t.Fatalf("the update after a dead letter was not published: %d records", len(later))
	}
	if h := headerOf(later[0], "cdcd.after_dead_letter"); h == "" || h != headerOf(dl[0], "cdcd.source.position") {
		t.Errorf("update of key 2: header cdcd.after_dead_letter = %q, want the dead letter's position %q", h, headerOf(dl[0], "cdcd.source.position"))
	}
	d.waitReady(5 * time.Second)
	if v := d.metric("cdcd_dead_letters_total"); v != 3 {
		t.Errorf("cdcd_dead_letters_total = %v, want 3", v)
	}

	// A batch holding a dead letter, with a SIGKILL right after its commit in Postgres.
	exec(`BEGIN; INSERT INTO pay VALUES (7, 7, 'x'); INSERT INTO pay VALUES (8, 'NaN', 'y'); INSERT INTO pay VALUES (9, 9, 'z'); COMMIT`)
	d.stop(syscall.SIGKILL)
	d.restart()
	d.waitReady(90 * time.Second)
	exec(`INSERT INTO pay VALUES (10, 10, 'marker')`)
	more := data.read(t, 3, time.Minute, 3*time.Second)
	dl = append(dl, letters.read(t, 1, time.Minute, 3*time.Second)...)
	if len(more) != 3 || len(dl) != 4 {
		t.Fatalf("after SIGKILL: %d data records (want 7, 9, 10) and %d dead letters (want 4)", len(more), len(dl))
	}

	// Fix the causes: a larger limit for the pay topic, a relaxed level for shape.
	adm, _ := kgo.NewClient(kgo.SeedBrokers(s.kafka...))
	defer adm.Close()
	big := "4194304"
	if _, err := kadm.NewClient(adm).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &big}}, payTopic); err != nil {
		t.Fatal(err)
	}
	// FORWARD admits long -> int (old readers promote int to long). (Apicurio treats a subject
	// level of NONE as "no rule of its own", so the global BACKWARD would still apply.)
	for _, r := range reg.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForward}, shapeTopic+"-value") {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	replay := func(args ...string) string {
		t.Helper()
		out, err := execCmd(cdcdBin, append([]string{"dlq", "replay", "--config", d.cfg, "--pipeline", name}, args...)...)
		if err != nil {
			t.Fatalf("dlq replay %v: %v\n%s", args, err, out)
		}
		return out
	}
	if out := replay("--class", "record_too_large"); !strings.Contains(out, "replayed 1 dead letter") {
		t.Fatalf("replay of record_too_large: %s", out)
	}
	if out := replay("--class", "schema_rejected"); !strings.Contains(out, "replayed 1 dead letter") {
		t.Fatalf("replay of schema_rejected: %s", out)
	}
	// The NaNs still cannot be published: replaying everything stops on them, naming the cause,
	// and publishes nothing twice.
	out, err := execCmd(cdcdBin, "dlq", "replay", "--config", d.cfg, "--pipeline", name, "--class", "value_not_representable")
	if err == nil || !strings.Contains(out, "still cannot be published") {
		t.Fatalf("replaying NaNs must fail with the cause: %v\n%s", err, out)
	}
	if out := replay("--class", "record_too_large"); !strings.Contains(out, "replayed 0 dead letter") {
		t.Fatalf("second replay published again: %s", out)
	}
	replayed := data.read(t, 2, time.Minute, 3*time.Second)
	if len(replayed) != 2 {
		t.Fatalf("replay published %d records, want 2 (the big row and the refused shape)", len(replayed))
	}
	for _, r := range replayed {
		if headerOf(r, "cdcd.replayed_from") == "" {
			t.Errorf("replayed record on %s lacks its cdcd.replayed_from header", r.Topic)
		}
	}
}

func execCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestPoisonFailsWithOnErrorFail: the same poison inputs with on_error: fail stop the pipeline
// with a message naming pipeline, table, key, position and cause.
func TestPoisonFailsWithOnErrorFail(t *testing.T) {
	s := needStack(t)
	cases := []struct {
		name, sql, want string
	}{
		{"nan", `INSERT INTO pay VALUES (2, 'NaN', 'nan')`, "does not fit"},
		{"big", `INSERT INTO pay VALUES (2, 2, ` + bigText(1_500_000) + `)`, "does not fit topic"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t, 3*time.Minute)
			dsn := newDatabase(t, ctx, s, "cdcd_fail_"+c.name)
			db := pgConnect(t, ctx, dsn)
			if _, err := db.Exec(ctx, dlqDDL); err != nil {
				t.Fatal(err)
			}
			name := uniqueName("fail" + c.name)
			d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.pay"}, "    on_error: fail\n"))
			d.waitReady(90 * time.Second)
			if _, err := db.Exec(ctx, c.sql); err != nil {
				t.Fatal(err)
			}
			body := d.waitUnready(time.Minute, `"failed"`, "pipeline "+name, "public.pay", "key {id=2}", "at position", c.want)
			t.Logf("%s", body)
		})
	}
}

// TestRegistryOutageRetries: with the registry down for 30 s while a table changes shape, the
// pipeline retries (no dead letters) and recovers.
func TestRegistryOutageRetries(t *testing.T) {
	s, ctx, dsn, db := setup(t, 6*time.Minute, "cdcd_regdown", `CREATE TABLE e (id int PRIMARY KEY, a int)`)
	name := uniqueName("regdown")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.e"}, "    on_error: dlq\n"))
	d.waitReady(90 * time.Second)
	registry := func(cmd string) {
		t.Helper()
		if out, err := exec.Command("../scripts/stack/registry.sh", cmd).CombinedOutput(); err != nil {
			t.Fatalf("registry.sh %s: %v\n%s", cmd, err, out)
		}
	}
	registry("down")
	up := false
	defer func() {
		if !up {
			registry("up")
		}
	}()
	for i, sql := range []string{`ALTER TABLE e ADD COLUMN b text`, `INSERT INTO e VALUES (1, 1, 'x')`, `INSERT INTO e VALUES (2, 2, 'y')`} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
	}
	d.waitUnready(time.Minute, "retrying")
	time.Sleep(30 * time.Second)
	registry("up")
	up = true
	d.waitReady(3 * time.Minute)
	c := newConsumer(t, s, name+".public.e")
	if got := c.read(t, 2, 2*time.Minute, 2*time.Second); len(got) != 2 {
		t.Fatalf("published %d rows after the outage, want 2", len(got))
	}
	if v := d.metric("cdcd_dead_letters_total"); v != 0 {
		t.Fatalf("%v dead letters during a registry outage, want none", v)
	}
	if v := d.metric("cdcd_retries_total"); v < 1 {
		t.Fatalf("no retries counted")
	}
	_ = context.Background
	_ = pgx.Identifier{}
}
