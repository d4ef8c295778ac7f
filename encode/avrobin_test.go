package encode

import (
	"math/big"
	"testing"

	"github.com/hamba/avro/v2"
)

// AppendBigDecimal writes what Avro readers decode back to the same unscaled value, for
// int64 and wider values of either sign.
func TestAppendBigDecimalRoundTrips(t *testing.T) {
	s := avro.MustParse(`{"type":"bytes","logicalType":"decimal","precision":60,"scale":2}`)
	for _, v := range []string{"0", "1", "-1", "127", "128", "-128", "-129", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "-9223372036854775809", "123456789012345678901234567890", "-340282366920938463463374607431768211456"} {
		n, _ := new(big.Int).SetString(v, 10)
		var got *big.Rat
		if err := avro.Unmarshal(s, AppendBigDecimal(nil, n), &got); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if want := new(big.Rat).SetFrac(n, big.NewInt(100)); got.Cmp(want) != 0 {
			t.Errorf("%s: got %s", v, got.RatString())
		}
	}
}
