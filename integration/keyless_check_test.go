package integration

import (
	"strings"
	"testing"
	"time"
)

// keylessCheckCases runs `cdcd check` on a pipeline over a keyless and a keyed table under
// three snapshot settings, yaml(snapshot) giving the configuration: a snapshot at start that
// would refuse the keyless table fails the check with the fix; listed in
// snapshot.accept_inexact_keyless it passes with a warning; with snapshot: never only a warning
// says that on-demand snapshots of it are refused. The keyed table is never named.
func keylessCheckCases(t *testing.T, nokey, keyed string, yaml func(snapshot string) string) {
	t.Helper()
	fix := "listing " + nokey + " in the pipeline's snapshot.accept_inexact_keyless"
	out, err := checkOutput(t, yaml("    snapshot: initial\n"))
	if err == nil || !strings.Contains(out, "snapshot of "+nokey) || !strings.Contains(out, "the snapshot refuses it") || !strings.Contains(out, fix) {
		t.Errorf("check of a keyless table the snapshot at start refuses: want a failure naming %s with the fix %q, got %v:\n%s", nokey, fix, err, out)
	}
	if strings.Contains(out, "snapshot of "+keyed) {
		t.Errorf("check named the keyed table %s:\n%s", keyed, out)
	}
	out, err = checkOutput(t, yaml("    snapshot: {mode: initial, accept_inexact_keyless: ["+nokey+"]}\n"))
	if err != nil || !strings.Contains(out, "snapshot of "+nokey) || !strings.Contains(out, "accepted as inexact") {
		t.Errorf("check of an accepted keyless table: want it to pass with a warning, got %v:\n%s", err, out)
	}
	out, err = checkOutput(t, yaml("    snapshot: never\n"))
	if err != nil || !strings.Contains(out, "an on-demand snapshot of it (cdcd snapshot) is refused") || !strings.Contains(out, fix) {
		t.Errorf("check of a keyless table with snapshot: never: want it to pass with a warning and the fix, got %v:\n%s", err, out)
	}
}

// TestCheckKeylessSnapshotPostgres: a table without a key (REPLICA IDENTITY FULL, no primary
// key) passed `cdcd check` and then stopped the pipeline at its snapshot.
func TestCheckKeylessSnapshotPostgres(t *testing.T) {
	s, _, dsn, _ := setup(t, 3*time.Minute, "cdcd_keylesschk", `
		CREATE TABLE nokey (id int, v text);
		ALTER TABLE nokey REPLICA IDENTITY FULL;
		CREATE TABLE keyed (id int PRIMARY KEY, v text)`)
	name := uniqueName("keylesschk")
	keylessCheckCases(t, "public.nokey", "public.keyed", func(snapshot string) string {
		return pipelineYAML(s, name, dsn, []string{"public.nokey", "public.keyed"}, snapshot)
	})
}

// TestCheckKeylessSnapshotMySQL: a MariaDB table without a primary key passed `cdcd check`
// (with a warning about its null record keys) and then stopped the pipeline at its snapshot.
func TestCheckKeylessSnapshotMySQL(t *testing.T) {
	s, _, db, dsn, _ := mysqlSetup(t, 3*time.Minute, "cdcd_mykeylesschk", `CREATE TABLE nokey (id int, v text);
CREATE TABLE keyed (id int PRIMARY KEY, v text)`)
	name := uniqueName("mykeylesschk")
	serverID := nextServerID()
	keylessCheckCases(t, db+".nokey", db+".keyed", func(snapshot string) string {
		return strings.Replace(mysqlPipelineYAML(s, name, dsn, serverID, []string{db + ".nokey", db + ".keyed"}, ""), "    snapshot: never\n", snapshot, 1)
	})
}
