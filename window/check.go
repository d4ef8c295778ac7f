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

// BeforeImageNeed says why the job needs the before image of changes that a source without
// full row images (a PostgreSQL table without REPLICA IDENTITY FULL, MySQL's binlog_row_image
// other than FULL) sends without it, or "" if it does not: table mode retracts the before
// image of every update and delete; events mode counts a delete by its before image when the
// job reads a row column (time, group_by or an aggregate's field).
func (s *Spec) BeforeImageNeed() string {
	switch {
	case s.Mode == ModeTable:
		return "mode table retracts the before image of every update and delete"
	case s.opSelected('d') && newExtractor(s).readsRow:
		return "mode events counts a delete by its before image (its time, group and values), and the job selects deletes (input.ops)"
	}
	return ""
}
