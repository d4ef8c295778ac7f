package config

import (
	"os"
	"strings"
	"testing"
)

func TestOutboxValidatedWithKeyAndLine(t *testing.T) {
	ob := base + "    outbox:\n      public.orders:\n"
	checkMalformed(t, []malformed{
		{"outbox of a table not captured", base + "    outbox:\n      public.other: {}\n",
			[]want{{"pipelines[0].outbox.public.other", 12, "not captured", "tables listed"}}, nil},
		{"unknown key", ob + "        route_by_field: type\n",
			[]want{{"pipelines[0].outbox.public.orders.route_by_field", 13, "route_by_field", "route_by"}}, nil},
		{"placeholder not escaped", ob + "        topic: \"events.${routedByValue}\"\n",
			[]want{{"pipelines[0].outbox.public.orders.topic", 13, "routedByValue is not set", "$${routedByValue}"}}, nil},
		{"bad topic", ob + "        topic: \"events/$${routedByValue}\"\n",
			[]want{{"pipelines[0].outbox.public.orders.topic", 13, "does not make valid Kafka topic names", "outbox.event.$${routedByValue}"}}, nil},
		{"another placeholder", ob + "        topic: \"outbox.$${routedByValue}.$${type}\"\n",
			[]want{{"pipelines[0].outbox.public.orders.topic", 13, "placeholder other than", "only placeholder"}}, nil},
		{"bad payload schema", ob + "        payload_schema: '{\"type\": \"recrd\"}'\n",
			[]want{{"pipelines[0].outbox.public.orders.payload_schema", 13, "not a valid Avro schema", "Avro schema in JSON"}}, nil},
		{"bad on_update", ob + "        on_update: ignore\n",
			[]want{{"pipelines[0].outbox.public.orders.on_update", 13, "not warn or fail", "warn"}}, nil},
		{"key is the payload", ob + "        key: payload\n",
			[]want{{"pipelines[0].outbox.public.orders.payload", 12, "also the key column", "distinct columns"}}, nil},
		{"header twice", ob + "        headers: [type, type]\n",
			[]want{{"pipelines[0].outbox.public.orders.headers[1]", 13, "listed twice", "once"}}, nil},
		{"id as a header", ob + "        headers: [id]\n",
			[]want{{"pipelines[0].outbox.public.orders.headers[0]", 13, "second header id", "always sent"}}, nil},
		{"topic override", base + "    topics: {overrides: {public.orders: orders}}\n    outbox:\n      public.orders: {}\n",
			[]want{{"pipelines[0].topics.overrides.public.orders", 11, "is an outbox", "outbox.public.orders.topic"}}, nil},
		{"column excluded by shape", base + "    shape:\n      public.orders:\n        columns: {exclude: [payload]}\n    outbox:\n      public.orders: {}\n",
			[]want{{"pipelines[0].outbox.public.orders", 15, "left out by shape", "keep the outbox's columns"}}, nil},
	})
}

func TestOutboxRulesHaveDebeziumDefaults(t *testing.T) {
	two := strings.Replace(base, "tables: [public.orders]", "tables: [public.orders, public.items]", 1)
	c, err := Parse("c.yaml", []byte(two+"    outbox:\n      public.orders:\n        headers: [type]\n        on_update: fail\n      public.items:\n        topic: \"events.$${routedByValue}\"\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Pipelines[0].ShapeRules()["public.orders"]
	if r.Outbox == nil {
		t.Fatalf("no outbox rule: %+v", r)
	}
	if o := c.Pipelines[0].ShapeRules()["public.items"].Outbox; o == nil || o.Topic != "events.${routedByValue}" {
		t.Errorf("public.items: the topic template is %+v, want events.${routedByValue}", o)
	}
	o := r.Outbox.WithDefaults()
	if o.ID != "id" || o.Key != "aggregateid" || o.Payload != "payload" || o.RouteBy != "aggregatetype" ||
		o.Topic != "outbox.event.${routedByValue}" || !o.FailOnUpdate || len(o.Headers) != 1 {
		t.Errorf("outbox rule %+v", o)
	}
}

// The commented outbox example in config.example.yaml, uncommented, is valid.
func TestExampleOutboxValidates(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "    # outbox:\n")
	if i < 0 {
		t.Fatal("config.example.yaml has no commented outbox example")
	}
	var b strings.Builder
	b.WriteString(text[:i])
	for _, line := range strings.Split(text[i:], "\n") {
		if !strings.HasPrefix(line, "    #") {
			break
		}
		if u := strings.Replace(line, "    # ", "    ", 1); !strings.HasPrefix(strings.TrimSpace(u), "#") {
			b.WriteString(u + "\n")
		}
	}
	b.WriteString(text[i+strings.Index(text[i:], "\n    retry:")+1:])
	yaml := strings.Replace(b.String(), "tables: [public.orders, public.customers]", "tables: [public.orders, public.customers, public.outbox]", 1)
	cfg, err := Parse("config.example.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("the outbox example does not validate:\n%v", err)
	}
	o := cfg.Pipelines[0].ShapeRules()["public.outbox"].Outbox
	if o == nil || o.Topic != "outbox.event.${routedByValue}" || len(o.Headers) != 1 || o.FailOnUpdate {
		t.Fatalf("outbox example parsed as %+v", o)
	}
}
