package postgres

import "testing"

// server_version_num is major*10000+minor since PostgreSQL 10 (150018 is 15.18), and
// major*10000+minor*100+patch before (90624 is 9.6.24).
func TestServerVersionString(t *testing.T) {
	for num, want := range map[int]string{150018: "15.18", 150000: "15.0", 170002: "17.2", 100023: "10.23", 90624: "9.6.24"} {
		if got := serverVersion(num); got != want {
			t.Errorf("serverVersion(%d) = %q, want %q", num, got, want)
		}
	}
}
