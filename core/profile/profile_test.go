package profile

import (
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/bloom"
)

func TestByName(t *testing.T) {
	for _, n := range []string{"", "spec"} {
		if p, err := ByName(n); err != nil || p != Spec {
			t.Fatalf("ByName(%q) = %v, %v", n, p, err)
		}
	}
	if p, err := ByName("nim"); err != nil || p != Nim || p.Codec.Name() != "nim" {
		t.Fatalf("ByName(nim) = %v, %v", p, err)
	}
	if _, err := ByName("carrier-pigeon"); err == nil {
		t.Fatal("unknown profile accepted")
	}
}

// The spec profile's default filter must be exactly the size @waku/sds expects
// (18,752 bytes): a JS peer throws on a shorter one and loses the message.
func TestSpecBloomSizeMatchesWakuSDS(t *testing.T) {
	r, err := bloom.NewRolling(10000, 0.001, Spec.Hash)
	if err != nil {
		t.Fatal(err)
	}
	r.Add("msg1")
	b := Spec.EncodeBloom(r.Filter())
	if len(b) != 18752 {
		t.Fatalf("encoded bloom is %d bytes, want 18752", len(b))
	}
	f, err := Spec.DecodeBloom(b, r.Filter().K(), r.Filter().M())
	if err != nil || !f.Test("msg1") || f.Test("msg2") {
		t.Fatalf("decode: %v", err)
	}
	if _, err := Spec.DecodeBloom(b[:len(b)-8], r.Filter().K(), r.Filter().M()); err == nil {
		t.Fatal("a filter of another size must be reported unusable")
	}
}

func TestSpecLamportIsMilliseconds(t *testing.T) {
	now := time.UnixMilli(1_700_000_123_456)
	if got := Spec.LamportNow(now); got != 1_700_000_123_456 {
		t.Fatalf("LamportNow = %d", got)
	}
	if got := Spec.LamportNow(time.Unix(-5, 0)); got != 0 {
		t.Fatalf("pre-epoch LamportNow = %d", got)
	}
}
