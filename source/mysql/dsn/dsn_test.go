package dsn

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	d, err := Parse("cdcd:p@ss:w@rd@tcp(db:3306)/inventory?charset=utf8mb4")
	if err != nil {
		t.Fatal(err)
	}
	if d.User != "cdcd" || d.Password != "p@ss:w@rd" || d.Addr != "db:3306" || d.Database != "inventory" || d.Params.Get("charset") != "utf8mb4" {
		t.Fatalf("%+v", d)
	}
	for _, bad := range []string{"db:3306", "root@db:3306/x", "root@tcp(db)/x", "root@tcp(db:3306"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Parse("u:secret@unix(/x)/"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error must not leak the password: %v", err)
	}
}
