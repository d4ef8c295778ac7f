package dlq

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sr"
)

type undecodable struct{}

func (undecodable) Error() string     { return "cannot decode" }
func (undecodable) Undecodable() bool { return true }

// notRep is undecodable too, as a source's decode error wrapping a not-representable value is:
// the more specific class must win.
type notRep struct{ undecodable }

func (notRep) NotRepresentable() bool { return true }

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name  string
		err   error
		v     Verdict
		class string
	}{
		{"encoder class", &encode.Error{Class: encode.ClassSchemaRejected, Err: errors.New("409")}, Poison, ClassSchemaRejected},
		{"undecodable", fmt.Errorf("table t: %w", undecodable{}), Poison, ClassUndecodable},
		{"not representable inside a decode error", fmt.Errorf("table t at 0/1#0: %w", notRep{}), Poison, ClassValueNotRepresentable},
		{"too large", fmt.Errorf("producing: %w", kerr.MessageTooLarge), Poison, ClassRecordTooLarge},
		{"invalid record", kerr.InvalidRecord, Poison, ClassOther},
		{"registry unavailable", &encode.RegistryError{Err: &sr.ResponseError{StatusCode: 503}}, Retry, ""},
		{"registry refusing cdcd", &encode.RegistryError{Err: &sr.ResponseError{StatusCode: 401}}, Unknown, ""},
		{"a full disk is not a poison record", syscall.ENOSPC, Unknown, ""},
		{"a retriable broker error", kerr.NotLeaderForPartition, Unknown, ""},
		{"nil", nil, Unknown, ""},
	} {
		v, class := Classify(c.err)
		if class != c.class || v != c.v {
			t.Errorf("%s: Classify = %v, %q; want %v, %q", c.name, v, class, c.v, c.class)
		}
	}
}
