package verify

import (
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// sqlText spells a decoded key value as the text the database reads for the column's type,
// so a differing key can be read again by `WHERE (key) IN (...)`.
func sqlText(c change.Column, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case *big.Rat:
		return x.FloatString(max(c.Scale, 0)), nil
	case []byte:
		return fmt.Sprintf("\\x%x", x), nil
	case time.Duration:
		return change.FormatDuration(x.Microseconds()), nil
	case time.Time:
		x = x.UTC()
		switch c.Kind {
		case change.KindDate:
			return x.Format("2006-01-02"), nil
		case change.KindTimestamp:
			return x.Format("2006-01-02 15:04:05.999999"), nil
		default:
			return x.Format("2006-01-02 15:04:05.999999Z07:00"), nil
		}
	}
	return "", fmt.Errorf("column %s: no SQL text for a key value of type %T", c.Name, v)
}
