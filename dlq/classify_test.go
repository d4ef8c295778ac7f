package dlq

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kerr"
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
		class string
		ok    bool
	}{
		{"encoder class", &encode.Error{Class: encode.ClassSchemaRejected, Err: errors.New("409")}, ClassSchemaRejected, true},
		{"undecodable", fmt.Errorf("table t: %w", undecodable{}), ClassUndecodable, true},
		{"not representable inside a decode error", fmt.Errorf("table t at 0/1#0: %w", notRep{}), ClassValueNotRepresentable, true},
		{"too large", fmt.Errorf("producing: %w", kerr.MessageTooLarge), ClassRecordTooLarge, true},
		{"invalid record", kerr.InvalidRecord, ClassOther, true},
		{"a full disk is not a poison record", syscall.ENOSPC, "", false},
		{"a retriable broker error", kerr.NotLeaderForPartition, "", false},
		{"nil", nil, "", false},
	} {
		class, ok := Classify(c.err)
		if class != c.class || ok != c.ok {
			t.Errorf("%s: Classify = %q, %v; want %q, %v", c.name, class, ok, c.class, c.ok)
		}
	}
}
