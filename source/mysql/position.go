package mysql

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
)

// A MySQL position (change.Position) is:
//   - Tx: the binlog file's sequence number (the digits after the last '.' of its name) in
//     the high 32 bits and the offset where the transaction starts (its GTID or BEGIN event)
//     in the low 32 bits. Binlog files hold whole transactions and offsets are 32-bit, so Tx
//     orders transactions as the server committed them, and replaying the same binlog gives
//     the same Tx. The start rather than the end lets cdcd emit a transaction's rows as they
//     arrive, without buffering it whole: binlogs hold committed transactions only.
//   - Index: the index of the row change among the transaction's changes of captured tables.
//   - Resume: a Token, where to restart to read this transaction again.
//
// A session always restarts at the start of the committed transaction (GTID set before it,
// or its file and offset) and the pipeline drops what the committed position covers, so a
// transaction split across Kafka transactions resumes exactly after its last published row.

// Token is a position's Resume: the binlog coordinates of a transaction's start.
type Token struct {
	Flavor string // "mariadb" or "mysql"
	File   string
	Pos    uint32
	// GTIDs is the server's GTID set before the transaction (MariaDB: every domain's
	// domain-server-seq; MySQL: UUID sets); empty without GTIDs.
	GTIDs string
	// GTID is the transaction's own GTID (empty without GTIDs, and in the token an XA
	// branch's later transactions share with it, see xa.go).
	GTID string
	// Server names the server whose binlog File and Pos are in (MySQL: server_uuid; MariaDB:
	// server_id); empty in tokens written before it was recorded.
	Server string
	// Shift is added to the server's (file sequence, offset) to give positions' Tx: zero
	// until a failover, then what keeps the new server's positions after the old one's.
	Shift uint64
	// Legacy: a token written before indexes were offsets in the transaction (binlog1).
	Legacy bool
}

const (
	tokenPrefix       = "binlog2;"
	legacyTokenPrefix = "binlog1;"
)

// commitIndex is a Commit's Index: past every event's index, and the mark of a transaction
// published whole (a failover then resumes after it by GTID).
const commitIndex = math.MaxUint32

// String encodes the token: binlog2;flavor;file;pos;server;shift;gtid;gtids (a legacy one
// as it was written: binlog1;flavor;file;pos;gtids).
func (t Token) String() string {
	if t.Legacy {
		return legacyTokenPrefix + t.Flavor + ";" + t.File + ";" + strconv.FormatUint(uint64(t.Pos), 10) + ";" + t.GTIDs
	}
	return tokenPrefix + t.Flavor + ";" + t.File + ";" + strconv.FormatUint(uint64(t.Pos), 10) + ";" + t.Server + ";" +
		strconv.FormatUint(t.Shift, 10) + ";" + t.GTID + ";" + t.GTIDs
}

// ParseToken decodes a position's Resume.
func ParseToken(s string) (Token, error) {
	bad := func() (Token, error) {
		return Token{}, fmt.Errorf("the committed position's resume token %q is not a MySQL binlog position (was the pipeline's source changed from postgres to mysql? fix: `cdcd reset-offsets` for the pipeline and re-snapshot)", s)
	}
	var t Token
	var posText string
	if rest, ok := strings.CutPrefix(s, legacyTokenPrefix); ok {
		parts := strings.SplitN(rest, ";", 4)
		if len(parts) != 4 {
			return bad()
		}
		t = Token{Flavor: parts[0], File: parts[1], GTIDs: parts[3], Legacy: true}
		posText = parts[2]
	} else if rest, ok := strings.CutPrefix(s, tokenPrefix); ok {
		parts := strings.SplitN(rest, ";", 7)
		if len(parts) != 7 {
			return bad()
		}
		shift, err := strconv.ParseUint(parts[4], 10, 64)
		if err != nil {
			return Token{}, fmt.Errorf("the committed position's resume token %q has a bad shift: %w", s, err)
		}
		t = Token{Flavor: parts[0], File: parts[1], Server: parts[3], Shift: shift, GTID: parts[5], GTIDs: parts[6]}
		posText = parts[2]
	} else {
		return bad()
	}
	pos, err := strconv.ParseUint(posText, 10, 32)
	if err != nil {
		return Token{}, fmt.Errorf("the committed position's resume token %q has a bad offset: %w", s, err)
	}
	t.Pos = uint32(pos)
	return t, nil
}

// fileSeq is the sequence number of a binlog file name (mysql-bin.000042 -> 42).
func fileSeq(name string) (uint32, error) {
	i := strings.LastIndexByte(name, '.')
	n, err := strconv.ParseUint(name[i+1:], 10, 32)
	if i < 0 || err != nil {
		return 0, fmt.Errorf("binlog file name %q does not end in a sequence number", name)
	}
	return uint32(n), nil
}

// txOf is the Tx of a transaction starting at pos in the file with sequence seq.
func txOf(seq, pos uint32) uint64 { return uint64(seq)<<32 | uint64(pos) }

// describe spells a position for operators: file:offset#index.
func describe(p change.Position) string {
	if t, err := ParseToken(p.Resume); err == nil {
		return fmt.Sprintf("%s:%d#%d", t.File, t.Pos, p.Index)
	}
	return p.String()
}
