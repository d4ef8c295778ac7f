package encode

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"
)

// SRRegistry is a Registry over franz-go's schema registry client. It is safe for
// concurrent use. It speaks the Confluent API and knows where registries behind it differ:
// Apicurio's ccompat API reports NONE for a subject without a compatibility rule of its own,
// and a subject PUT of NONE deletes the subject's rule (the global level then applies), so
// relaxing a subject there goes through Apicurio's own API.
type SRRegistry struct {
	cl *sr.Client
	// base is the registry's first URL without user info, for the commands messages give.
	base string
	// curlAuth is the curl option for the registry's basic auth, with the password left out.
	curlAuth string

	mu sync.Mutex
	// pending holds levels to set on subjects that did not exist yet when their level was
	// ensured: some registries refuse a subject-level config before the subject's first
	// schema. The first schema has nothing to be compatible with, so setting the level right
	// after it is registered loses no check.
	pending map[string]sr.CompatibilityLevel
	// own holds subjects known to have a compatibility level of their own.
	own map[string]bool
	// apicurio is set once the registry is known to be Apicurio (by its URL or its answers).
	apicurio bool
}

// NewSRRegistry wraps cl.
func NewSRRegistry(cl *sr.Client) *SRRegistry {
	r := &SRRegistry{cl: cl, pending: map[string]sr.CompatibilityLevel{}, own: map[string]bool{}}
	if urls, ok := cl.OptValue("URLs").([]string); ok && len(urls) > 0 {
		r.base = redactURL(urls[0])
	}
	if ba := cl.OptValues("BasicAuth"); len(ba) > 0 {
		if user, ok := ba[0].(string); ok && user != "" {
			r.curlAuth = " -u '" + strings.ReplaceAll(user, "'", `'\''`) + ":<password>'" // never the password itself
		}
	}
	r.apicurio = strings.Contains(r.base, "/apis/ccompat/")
	return r
}

// redactURL drops user info (a password written in the URL) and a trailing slash.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<the schema registry URL>"
	}
	u.User = nil
	return strings.TrimSuffix(u.String(), "/")
}

// Register implements Registry with POST /subjects/{subject}/versions, which returns the id
// of an identical schema already registered instead of adding a version. A refusal is an
// *Error of class ClassSchemaRejected that says which column changed how, which rule of the
// subject's level that breaks, and what to do, with the registry's own words at the end.
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
	if errors.As(err, &re) {
		if strings.Contains(registryMessage(re), "io.apicurio") {
			r.mu.Lock()
			r.apicurio = true
			r.mu.Unlock()
		}
		switch re.StatusCode {
		case http.StatusConflict:
			return 0, &Error{Class: ClassSchemaRejected, Subject: subject, Err: r.explainRefusal(ctx, subject, schema, re)}
		case http.StatusUnprocessableEntity:
			return 0, &Error{Class: ClassSchemaRejected, Subject: subject, Err: fmt.Errorf(
				"the schema registry refused the new schema as invalid (HTTP %d, error code %d): %s; cdcd derives schemas that Avro accepts, so check that the registry supports Avro schemas and that schema_registry.url points at its Confluent-compatible API",
				re.StatusCode, re.ErrorCode, registryMessage(re))}
		}
	}
	return 0, &RegistryError{Op: "registering schema", Subject: subject, Err: err}
}

func registryMessage(re *sr.ResponseError) string {
	if re.Message != "" {
		return re.Message
	}
	return string(re.Raw)
}

// Compatibility is what EnsureCompatibility found and did for one subject.
type Compatibility struct {
	// Level is the compatibility level in force for the subject afterwards.
	Level string
	// Set: cdcd made Level the subject's own level (now, or right after its first schema is
	// registered, on registries that refuse a level for a subject that does not exist yet).
	Set bool
	// Own: the subject already had a level of its own, which cdcd kept.
	Own bool
	// Fix, when Own and Level does not enforce the configured level, is how to give the
	// subject the configured level.
	Fix string
}

// EnsureCompatibility implements Registry. The rule, which never lowers what is in force:
//
//   - A subject with a level of its own keeps it, whatever it is: an operator (or an earlier
//     run of cdcd) set it. Fix says how to raise it when it is weaker than level.
//   - Otherwise cdcd sets the subject's level to the weakest level implying both level and
//     the global level (BACKWARD with a global NONE or BACKWARD gives BACKWARD; with a
//     global FORWARD, FULL; with a global FULL_TRANSITIVE, FULL_TRANSITIVE), so the subject
//     keeps it when the global level changes later. If the registry refuses that with 404
//     because the subject does not exist yet, the level is set right after the subject's
//     first schema is registered.
//
// "A level of its own" is read with defaultToGlobal=false. Apicurio answers NONE there for a
// subject without a rule; when the effective level (defaultToGlobal=true) is not NONE, that
// NONE is known to mean "no rule" and the subject gets level. A subject whose own and
// effective levels are both NONE is taken at its word and kept (on Apicurio, the global
// level is then NONE too, so nothing in force is lowered either way).
func (r *SRRegistry) EnsureCompatibility(ctx context.Context, subject, level string) (Compatibility, error) {
	want, err := parseLevel(level)
	if err != nil {
		return Compatibility{}, err
	}
	own, hasOwn, err := r.subjectLevel(ctx, subject, false)
	if err != nil {
		return Compatibility{}, err
	}
	if hasOwn && own == sr.CompatNone {
		eff, _, err := r.subjectLevel(ctx, subject, true)
		if err != nil {
			return Compatibility{}, err
		}
		if eff != sr.CompatNone {
			hasOwn = false // Apicurio's NONE for "no rule of its own"
		}
	}
	if hasOwn {
		r.mu.Lock()
		r.own[subject] = true
		r.mu.Unlock()
		c := Compatibility{Level: own.String(), Own: true}
		if !implies(own, want) {
			c.Fix = "to apply the configured level: " + r.setLevelCommand(subject, join(own, want).String())
		}
		return c, nil
	}
	global := r.cl.Compatibility(ctx)[0]
	if global.Err != nil {
		return Compatibility{}, &RegistryError{Op: "reading the global compatibility level", Err: global.Err}
	}
	target := join(global.Level, want)
	if err := r.setLevel(ctx, subject, target); err != nil {
		var re *sr.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
			return Compatibility{}, err
		}
		r.mu.Lock()
		r.pending[subject] = target
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.own[subject] = true
	r.mu.Unlock()
	return Compatibility{Level: target.String(), Set: true}, nil
}

// subjectLevel reads subject's level; ok is false when the registry has none to report
// (404).
func (r *SRRegistry) subjectLevel(ctx context.Context, subject string, defaultToGlobal bool) (level sr.CompatibilityLevel, ok bool, err error) {
	pctx := sr.WithParams(ctx, sr.RawParams(url.Values{"defaultToGlobal": {strconv.FormatBool(defaultToGlobal)}}))
	res := r.cl.Compatibility(pctx, subject)[0]
	if res.Err == nil {
		return res.Level, true, nil
	}
	var re *sr.ResponseError
	if errors.As(res.Err, &re) && re.StatusCode == http.StatusNotFound {
		return 0, false, nil
	}
	return 0, false, &RegistryError{Op: "reading the compatibility level", Subject: subject, Err: res.Err}
}

func (r *SRRegistry) setLevel(ctx context.Context, subject string, level sr.CompatibilityLevel) error {
	set := r.cl.SetCompatibility(ctx, sr.SetCompatibility{Level: level}, subject)[0]
	if set.Err != nil {
		return &RegistryError{Op: "setting the compatibility level to " + level.String(), Subject: subject, Err: set.Err}
	}
	return nil
}

// setLevelCommand is a command that sets subject's own level; it works on Confluent's
// registry and on Apicurio (except for NONE there: see relaxCommand).
func (r *SRRegistry) setLevelCommand(subject, level string) string {
	return fmt.Sprintf(`curl%s -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' -d '{"compatibility":"%s"}' %s/config/%s`,
		r.curlAuth, level, r.base, url.PathEscape(subject))
}

// relaxCommand is a command that turns subject's compatibility checks off. On Apicurio a
// Confluent-API PUT of NONE deletes the subject's rule and the global level applies, so the
// command sets the artifact's rule through Apicurio's own API instead.
func (r *SRRegistry) relaxCommand(subject string) string {
	r.mu.Lock()
	apicurio, own := r.apicurio, r.own[subject]
	r.mu.Unlock()
	if !apicurio {
		return r.setLevelCommand(subject, "NONE")
	}
	native := apicurioAPI(r.base)
	body := `'{"ruleType":"COMPATIBILITY","config":"NONE"}'`
	rules := fmt.Sprintf("%s/groups/default/artifacts/%s/rules", native, url.PathEscape(subject))
	if own {
		return fmt.Sprintf("curl%s -X PUT -H 'Content-Type: application/json' -d %s %s/COMPATIBILITY (Apicurio's API: a Confluent-API PUT of NONE would delete the rule and leave the global level in force)", r.curlAuth, body, rules)
	}
	return fmt.Sprintf("curl%s -X POST -H 'Content-Type: application/json' -d %s %s (Apicurio's API: a Confluent-API PUT of NONE would leave the global level in force)", r.curlAuth, body, rules)
}

// apicurioAPI derives Apicurio's own API from its Confluent-compatible one.
func apicurioAPI(base string) string {
	for ccompat, native := range map[string]string{"/apis/ccompat/v7": "/apis/registry/v3", "/apis/ccompat/v6": "/apis/registry/v2"} {
		if i := strings.Index(base, ccompat); i >= 0 {
			return base[:i] + native
		}
	}
	if u, err := url.Parse(base); err == nil {
		return u.Scheme + "://" + u.Host + "/apis/registry/v3"
	}
	return base
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
