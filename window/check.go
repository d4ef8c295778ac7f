package window

import (
	"fmt"

	"github.com/hamba/avro/v2"
)

// CheckInput checks a job against the value schema (Avro JSON) registered for one of its
// input topics, as the job does when it starts: every field path must exist with a type the
// aggregate can take (the error names the field and the fields that exist). It returns the
// result key and value schemas the job would register for that input.
func CheckInput(spec *Spec, schema string) (key, value string, err error) {
	if err := spec.Validate(); err != nil {
		return "", "", err
	}
	s, err := avro.Parse(schema)
	if err != nil {
		return "", "", fmt.Errorf("parsing the input schema: %w", err)
	}
	if _, err := newExtractor(spec).compile(0, s); err != nil {
		return "", "", err
	}
	j := &Job{spec: spec}
	if err := j.buildSchemas(s); err != nil {
		return "", "", err
	}
	return j.keySchema.json, j.valSchema.json, nil
}
