package encode

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"
)

// SRRegistry is a Registry over franz-go's schema registry client. It is safe for
// concurrent use.
type SRRegistry struct {
	cl *sr.Client

	mu sync.Mutex
	// pending holds levels to set on subjects that did not exist yet when their level was
	// ensured: some registries (Apicurio) refuse a subject-level config before the subject's
	// first schema. The first schema has nothing to be compatible with, so setting the
	// level right after it is registered loses no check.
	pending map[string]sr.CompatibilityLevel
}

// NewSRRegistry wraps cl.
func NewSRRegistry(cl *sr.Client) *SRRegistry {
	return &SRRegistry{cl: cl, pending: map[string]sr.CompatibilityLevel{}}
}

// Register implements Registry with POST /subjects/{subject}/versions, which returns the id
// of an identical schema already registered instead of adding a version.
func (r *SRRegistry) Register(ctx context.Context, subject, schema string) (int, error) {
	id, err := r.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: schema, Type: sr.TypeAvro}, -1, -1)
	if err == nil {
		r.mu.Lock()
		level, ok := r.pending[subject]
		r.mu.Unlock()
		if ok {
			if err := r.setLevel(ctx, subject, level); err != nil {
				return 0, err // registering again is idempotent; the caller retries both
			}
			r.mu.Lock()
			delete(r.pending, subject)
			r.mu.Unlock()
		}
		return id, nil
	}
	var re *sr.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusConflict || re.StatusCode == http.StatusUnprocessableEntity) {
		return 0, &Error{Class: ClassSchemaRejected, Subject: subject, Err: fmt.Errorf(
			"the schema registry refused the new schema (HTTP %d, error code %d): %s; make the table change compatible with the subject's compatibility level (adding a nullable column is), or relax the subject's level for this change and restore it afterwards",
			re.StatusCode, re.ErrorCode, registryMessage(re))}
	}
	return 0, &RegistryError{Op: "registering schema", Subject: subject, Err: err}
}

func registryMessage(re *sr.ResponseError) string {
	if re.Message != "" {
		return re.Message
	}
	return string(re.Raw)
}

// EnsureCompatibility implements Registry. The rule, which never lowers what is in force:
//
//   - A subject with its own (subject-level) compatibility keeps it, whatever it is: an
//     operator set it on purpose. The encoder logs it when it differs from the configured
//     level.
//   - Otherwise, when the global level already implies level (FULL implies BACKWARD; a
//     transitive level implies its plain form), nothing is written and the global level
//     stays in force.
//   - Otherwise the subject's level is set to the weakest level implying both the global
//     level and level (BACKWARD with a global NONE gives BACKWARD; BACKWARD with a global
//     FORWARD gives FULL). If the registry refuses that with 404 because the subject does not
//     exist yet, the level is set right after the subject's first schema is registered.
//
// Apicurio reports NONE for a subject without a rule of its own; that NONE is then taken
// as the subject's level and left alone, and Apicurio keeps applying its global rule.
func (r *SRRegistry) EnsureCompatibility(ctx context.Context, subject, level string) (string, error) {
	want, err := parseLevel(level)
	if err != nil {
		return "", err
	}
	// defaultToGlobal=false: report only a subject-level setting (404 when there is none).
	sctx := sr.WithParams(ctx, sr.RawParams(url.Values{"defaultToGlobal": {"false"}}))
	res := r.cl.Compatibility(sctx, subject)[0]
	if res.Err == nil {
		return res.Level.String(), nil
	}
	var re *sr.ResponseError
	if !errors.As(res.Err, &re) || re.StatusCode != http.StatusNotFound {
		return "", &RegistryError{Op: "reading the compatibility level", Subject: subject, Err: res.Err}
	}
	global := r.cl.Compatibility(ctx)[0]
	if global.Err != nil {
		return "", &RegistryError{Op: "reading the global compatibility level", Err: global.Err}
	}
	if implies(global.Level, want) {
		return global.Level.String(), nil
	}
	target := join(global.Level, want)
	if err := r.setLevel(ctx, subject, target); err != nil {
		if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
			return "", err
		}
		r.mu.Lock()
		r.pending[subject] = target
		r.mu.Unlock()
	}
	return target.String(), nil
}

func (r *SRRegistry) setLevel(ctx context.Context, subject string, level sr.CompatibilityLevel) error {
	set := r.cl.SetCompatibility(ctx, sr.SetCompatibility{Level: level}, subject)[0]
	if set.Err != nil {
		return &RegistryError{Op: "setting the compatibility level to " + level.String(), Subject: subject, Err: set.Err}
	}
	return nil
}

// Compatibility levels as sets of checks, so "implies" and "join" are set operations.
const (
	checkBackward = 1 << iota
	checkBackwardTransitive
	checkForward
	checkForwardTransitive
)

var levelChecks = map[sr.CompatibilityLevel]int{
	sr.CompatNone:               0,
	sr.CompatBackward:           checkBackward,
	sr.CompatBackwardTransitive: checkBackward | checkBackwardTransitive,
	sr.CompatForward:            checkForward,
	sr.CompatForwardTransitive:  checkForward | checkForwardTransitive,
	sr.CompatFull:               checkBackward | checkForward,
	sr.CompatFullTransitive:     checkBackward | checkBackwardTransitive | checkForward | checkForwardTransitive,
}

// implies reports whether level a enforces every check level b does.
func implies(a, b sr.CompatibilityLevel) bool {
	return levelChecks[a]&levelChecks[b] == levelChecks[b]
}

// join returns the weakest level implying both a and b.
func join(a, b sr.CompatibilityLevel) sr.CompatibilityLevel {
	need := levelChecks[a] | levelChecks[b]
	best, bestN := sr.CompatFullTransitive, 5
	for l, c := range levelChecks {
		if c&need != need {
			continue
		}
		n := 0
		for x := c; x != 0; x &= x - 1 {
			n++
		}
		if n < bestN || n == bestN && l < best { // deterministic on ties
			best, bestN = l, n
		}
	}
	return best
}
