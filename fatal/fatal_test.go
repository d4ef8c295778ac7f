package fatal

import (
	"errors"
	"fmt"
	"testing"
)

func TestAs(t *testing.T) {
	cause := errors.New("binlog_format is STATEMENT")
	err := fmt.Errorf("session: %w", &Error{cause})
	f, ok := As(err)
	if !ok || f.Err != cause || !errors.Is(err, cause) || err.Error() != "session: binlog_format is STATEMENT" {
		t.Fatalf("As(%v) = %v, %v", err, f, ok)
	}
	var marked interface{ Fatal() bool }
	if !errors.As(err, &marked) || !marked.Fatal() {
		t.Fatal("a wrapped *Error does not say Fatal()")
	}
	if _, ok := As(cause); ok {
		t.Fatal("an unmarked error is taken for fatal")
	}
}
