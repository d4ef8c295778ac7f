package mysql

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// gtidState is a server's GTID state before the next transaction, as a resume token keeps it
// and as the server takes it back to resume: on MySQL the set of every executed GTID (server
// UUID intervals); on MariaDB the last GTID of each replication domain.
type gtidState interface {
	// Update adds the GTID of the next transaction (in binlog order).
	Update(gtid string) error
	String() string
}

// parseGTIDs reads a GTID state stored in a resume token or read from the server. A MariaDB
// state that names a domain more than once (written by versions that kept one entry per
// domain and server_id) keeps the domain's highest sequence number: MariaDB refuses a
// duplicate domain in @slave_connect_state.
func parseGTIDs(flavor, s string) (gtidState, error) {
	if flavor != gomysql.MariaDBFlavor {
		gs, err := gomysql.ParseMysqlGTIDSet(s)
		if err != nil {
			return nil, err
		}
		return gs.(*gomysql.MysqlGTIDSet), nil
	}
	m := &mariaGTIDs{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		g, err := gomysql.ParseMariadbGTID(part)
		if err != nil {
			return nil, err
		}
		if i, ok := m.find(g.DomainID); ok && m.last[i].SequenceNumber >= g.SequenceNumber {
			continue
		}
		m.set(*g)
	}
	return m, nil
}

// syncGTIDSet is the GTID set go-mysql's StartSyncGTID takes for a state.
func syncGTIDSet(flavor string, s gtidState) (gomysql.GTIDSet, error) {
	return gomysql.ParseGTIDSet(flavor, s.String())
}

// mariaGTIDs is MariaDB's GTID position: the last GTID of each domain, ordered by domain. A
// domain may be written by several server_ids (a session's SET server_id, a former primary);
// only its last GTID in binlog order is the position.
type mariaGTIDs struct{ last []gomysql.MariadbGTID }

func (m *mariaGTIDs) find(domain uint32) (int, bool) {
	return slices.BinarySearchFunc(m.last, domain, func(g gomysql.MariadbGTID, d uint32) int {
		return int(int64(g.DomainID) - int64(d))
	})
}

// set makes g its domain's last GTID.
func (m *mariaGTIDs) set(g gomysql.MariadbGTID) {
	i, ok := m.find(g.DomainID)
	if ok {
		m.last[i] = g
		return
	}
	m.last = slices.Insert(m.last, i, g)
}

// Update takes one GTID, domain-server-seq, the next in binlog order.
func (m *mariaGTIDs) Update(gtid string) error {
	g, err := gomysql.ParseMariadbGTID(gtid)
	if err != nil {
		return fmt.Errorf("parsing MariaDB GTID %q: %w", gtid, err)
	}
	m.set(*g)
	return nil
}

func (m *mariaGTIDs) String() string {
	b := make([]byte, 0, 24*len(m.last))
	for i, g := range m.last {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(g.DomainID), 10)
		b = append(b, '-')
		b = strconv.AppendUint(b, uint64(g.ServerID), 10)
		b = append(b, '-')
		b = strconv.AppendUint(b, g.SequenceNumber, 10)
	}
	return string(b)
}
