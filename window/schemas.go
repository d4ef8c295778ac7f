package window

import (
	"context"
	"errors"
	"fmt"

	"github.com/cdcd-dev/cdcd/encode"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// prepare checks the job's fields against every input topic's registered schema, creates the
// internal and output topics, and registers the result schemas.
func (j *Job) prepare(ctx context.Context) error {
	// j.keySchema and j.valSchema are those of the last input; every input must give the same.
	var firstTopic, firstKey, firstVal string
	for _, t := range j.spec.Topics {
		sub := t + "-value"
		ss, err := j.cfg.Registry.SchemaByVersion(ctx, sub, -1)
		if err != nil {
			var re *sr.ResponseError
			if errors.As(err, &re) && re.StatusCode == 404 {
				return &waitError{fmt.Errorf("input topic %s has no schema yet (subject %s): waiting for the pipeline that writes it to publish its first change", t, sub)}
			}
			return fmt.Errorf("schema registry: reading the schema of input topic %s (subject %s): %w", t, sub, err)
		}
		s, err := avro.Parse(ss.Schema.Schema)
		if err != nil {
			return &FatalError{Err: fmt.Errorf("parsing the schema of %s: %w", sub, err)}
		}
		if _, err := j.x.compile(ss.ID, s); err != nil {
			return &FatalError{Err: fmt.Errorf("window job %s, input topic %s: %w", j.spec.Name, t, err)}
		}
		// Every input must give the same result schema: one job's results have one.
		if err := j.buildSchemas(s); err != nil {
			return &FatalError{Err: fmt.Errorf("window job %s, input topic %s: %w", j.spec.Name, t, err)}
		}
		if firstTopic == "" {
			firstTopic, firstKey, firstVal = t, j.keySchema.json, j.valSchema.json
		} else if j.keySchema.json != firstKey || j.valSchema.json != firstVal {
			return &FatalError{Err: fmt.Errorf("window job %s: input topics %s and %s give results of different types (a group or aggregate field of another type, or a decimal of another scale): %s against %s; "+
				"fix: read topics whose fields have the same types (e.g. the same numeric(p,s)), or run one job per topic", j.spec.Name, firstTopic, t, j.valSchema.json, firstVal)}
		}
	}
	if err := j.createTopics(ctx); err != nil {
		return err
	}
	for _, s := range []struct {
		subject string
		schema  *outSchema
		id      *int
	}{{j.spec.Output + "-key", j.keySchema, &j.keyID}, {j.spec.Output + "-value", j.valSchema, &j.valID}} {
		ss, err := j.cfg.Registry.CreateSchema(ctx, s.subject, sr.Schema{Schema: s.schema.json, Type: sr.TypeAvro})
		if err != nil {
			return registryRefusal(s.subject, err)
		}
		*s.id = ss.ID
	}
	return nil
}

// buildSchemas derives the result key and value schemas from the first input topic's schema.
func (j *Job) buildSchemas(env avro.Schema) error {
	ns := "io.cdcd.window." + encode.AvroNamePart(j.spec.Name)
	var keyFields, valFields []outField
	for _, g := range j.spec.GroupBy {
		ft := fieldType(env, g)
		if ft == nil {
			return fmt.Errorf("group field %s is not in the input schema", g)
		}
		f, err := fieldFor(g.Field, ft) // a field of the input's Avro schema: a valid name
		if err != nil {
			return fmt.Errorf("group_by %s: %w", g, err)
		}
		keyFields = append(keyFields, f)
	}
	ts := outField{name: "window_start", typ: map[string]any{"type": "long", "logicalType": "timestamp-millis"}, write: writeMillis}
	te := ts
	te.name = "window_end"
	keyFields = append(keyFields, ts)
	if j.spec.Window.Type == Count {
		keyFields = append(keyFields, outField{name: "window_index", typ: "long", write: writeLong})
	}
	valFields = append(valFields, keyFields...)
	valFields = append(valFields, te)
	for i, a := range j.spec.Aggs {
		var f outField
		var err error
		switch a.Fn {
		case FnCount, FnCountDistinct:
			f = outField{name: a.Name, typ: "long", write: writeLong}
		case FnAvg:
			f = outField{name: a.Name, typ: "double", nullable: true, write: writeDouble}
		case FnSum:
			f, err = sumField(a.Name, fieldType(env, a.Field))
		default:
			ft := fieldType(env, a.Field)
			if ft == nil && a.Field.Root == "" {
				ft = avro.NewPrimitiveSchema(avro.Long, nil)
			}
			f, err = fieldFor(a.Name, ft)
			f.name = a.Name
		}
		if err != nil {
			fix := "aggregate a column of another type, or choose another fn"
			if a.Fn == FnSum {
				fix = "sum a numeric column (smallint, integer, bigint, numeric, real, double precision); for text use count_distinct, min, max, first or last"
			}
			return fmt.Errorf("aggregates[%d] (%s: %s of %s): %w; fix: %s", i, a.Name, a.Fn, a.Field, err, fix)
		}
		valFields = append(valFields, f)
	}
	valFields = append(valFields, outField{name: "events", typ: "long", write: writeLong})
	j.keySchema = newOutSchema("Key", ns, keyFields)
	j.valSchema = newOutSchema("Value", ns, valFields)
	return nil
}

// registryRefusal classifies a failed registration of a result schema: a refusal the registry
// will repeat (a 4xx other than a timeout or rate limit) stops the job with the fix; anything
// else (the registry unreachable, a 5xx) is retried.
func registryRefusal(subject string, err error) error {
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("registering the result schema under %s: %w", subject, err)
	}
	switch {
	case re.StatusCode == 409:
		return &FatalError{Err: fmt.Errorf("registering the result schema under %s: %w; fix: the subject holds an incompatible schema: if the job's group fields or aggregates changed, write the results to a new output topic", subject, err)}
	case re.StatusCode == 401 || re.StatusCode == 403:
		return &FatalError{Err: fmt.Errorf("registering the result schema under %s: %w; fix: give schema_registry credentials that may register schemas under the subject", subject, err)}
	case re.StatusCode >= 400 && re.StatusCode < 500 && re.StatusCode != 408 && re.StatusCode != 429:
		return &FatalError{Err: fmt.Errorf("registering the result schema under %s: the registry refuses it: %w; fix: check the subject's mode and compatibility settings in the registry (a read-only or import mode refuses new schemas), or write the results to a new output topic", subject, err)}
	}
	return fmt.Errorf("registering the result schema under %s: %w", subject, err)
}
