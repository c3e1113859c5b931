package hash

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestNimFarmVectors(t *testing.T) {
	vectors := []struct {
		s    string
		want int64
	}{
		{"", -7286425919675154353},
		{"a", -5528939962900187677},
		{"msg1", -1191417451468722816},
		{"msg1 b", 2240908806621825803},
		{"alice", -8321384245627934459},
		{"bob", 997402615728716913},
		{"m1", -1652044978079387191},
		{"alicem1", -7787591295787428167},
		{"bobm1", -4451582708241465515},
		{"alphabet", -2427165924636348523},
		{"1footrue", -1541654101129638711},
		{"2applefalse", 2794438866806483259},
		{"3true", -4880158226897771312},
		{"Amazon Redshift", 8085098817162212970},
	}
	for _, v := range vectors {
		if got := NimFarm(v.s); got != v.want {
			t.Errorf("NimFarm(%q) = %d, want %d", v.s, got, v.want)
		}
	}
}

func TestNimRepairVectors(t *testing.T) {
	const (
		tMin = 30 * time.Second
		tMax = 300 * time.Second
	)
	reqs := []struct {
		p, m string
		want time.Duration
	}{
		{"alice", "m1", 198167 * time.Millisecond},
		{"bob", "m1", 105515 * time.Millisecond},
	}
	for _, v := range reqs {
		if got := NimTReq(v.p, v.m, tMin, tMax); got != v.want {
			t.Errorf("NimTReq(%q, %q) = %v, want %v", v.p, v.m, got, v.want)
		}
	}
	resps := []struct {
		p, s, m string
		want    time.Duration
	}{
		{"bob", "alice", "m1", 47732 * time.Millisecond},
		{"carol", "alice", "m1", 8988 * time.Millisecond},
		{"alice", "alice", "m1", 0},
	}
	for _, v := range resps {
		if got := NimTResp(v.p, v.s, v.m, tMax); got != v.want {
			t.Errorf("NimTResp(%q, %q, %q) = %v, want %v", v.p, v.s, v.m, got, v.want)
		}
	}
	if NimInResponseGroup("bob", "alice", "m1", 10) {
		t.Errorf("NimInResponseGroup(bob, alice, m1, 10) = true, want false")
	}
	// |h("alicem1")| mod 10 = 7 (sender), |h("bobm1")| mod 10 = 5 (participant).
	if gs, gp := absU64(NimFarm("alicem1"))%10, absU64(NimFarm("bobm1"))%10; gs != 7 || gp != 5 {
		t.Errorf("groups sender=%d participant=%d, want 7, 5", gs, gp)
	}
	if !NimInResponseGroup("bob", "alice", "m1", 1) || !NimInResponseGroup("bob", "alice", "m1", 0) {
		t.Errorf("NimInResponseGroup with numGroups <= 1 must be true")
	}
	if !NimInResponseGroup("alice", "alice", "m1", 10) {
		t.Errorf("a participant is always in its own response group")
	}
}

func TestNimEdgeCases(t *testing.T) {
	if got := NimTReq("a", "b", 5*time.Second, 5*time.Second); got != 5*time.Second {
		t.Errorf("NimTReq empty range = %v, want 5s", got)
	}
	if got := NimTReq("a", "b", 5*time.Second, time.Second); got != 5*time.Second {
		t.Errorf("NimTReq negative range = %v, want 5s", got)
	}
	if got := NimTResp("a", "b", "c", 0); got != 0 {
		t.Errorf("NimTResp tMax=0 = %v, want 0", got)
	}
	if got := NimTResp("a", "b", "c", -time.Second); got != 0 {
		t.Errorf("NimTResp tMax<0 = %v, want 0", got)
	}
	// Extreme durations must neither panic nor leave the documented range.
	got := NimTReq("a", "b", math.MinInt64, math.MaxInt64)
	if got < time.Duration(math.MinInt64) || got > time.Duration(math.MaxInt64) {
		t.Errorf("NimTReq extreme = %v", got)
	}
	if got := NimTResp("a", "b", "c", math.MaxInt64); got < 0 {
		t.Errorf("NimTResp extreme = %v", got)
	}
}

func TestAbsU64(t *testing.T) {
	cases := map[int64]uint64{0: 0, 1: 1, -1: 1, math.MaxInt64: math.MaxInt64, math.MinInt64: 1 << 63}
	for in, want := range cases {
		if got := absU64(in); got != want {
			t.Errorf("absU64(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestMurmurKnownValues(t *testing.T) {
	// Published MurmurHash3_x86_32 results for seed 0.
	cases := map[string]uint32{
		"":              0,
		"a":             0x3c2569b2,
		"abc":           0xb3dd93fa,
		"Hello, world!": 0xc0363e43,
		"The quick brown fox jumps over the lazy dog": 0x2e4ff723,
	}
	for s, want := range cases {
		if got := murmur32(s); got != want {
			t.Errorf("murmur32(%q) = %#x, want %#x", s, got, want)
		}
	}
}

func TestWakuSDSMatchesJSForASCII(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 300; i++ {
		s := b.String()
		if a, j := WakuSDS(s), WakuSDSJS(s); a != j {
			t.Fatalf("len %d: WakuSDS = %d, WakuSDSJS = %d", i, a, j)
		}
		b.WriteByte(byte(i*7) & 0x7f)
	}
}

func TestHashNEdgeCases(t *testing.T) {
	if got := WakuHashN("x", 3, 0); got != 0 {
		t.Errorf("m=0: got %d", got)
	}
	for _, m := range []int{1, 2, 7, 150000, math.MaxInt32, math.MaxInt64, math.MinInt64, -150000} {
		for _, i := range []int{0, 1, 9, -1, -9, math.MaxInt64, math.MinInt64} {
			got := WakuHashN("item", i, m)
			lim := absU64(int64(m))
			if got < 0 || uint64(got) >= lim {
				t.Errorf("WakuHashN(item, %d, %d) = %d out of range", i, m, got)
			}
		}
	}
	// Negative m behaves like |m|, as in the JavaScript (% keeps the dividend's sign).
	if WakuHashN("item", 4, -150000) != WakuHashN("item", 4, 150000) {
		t.Errorf("negative m differs from |m|")
	}
	// i = -1 gives |a - b| mod m.
	m := 150000
	a := int(absU64(WakuSDS("item")) % uint64(m))
	b := int(absU64(WakuSDS("item b")) % uint64(m))
	want := a - b
	if want < 0 {
		want = -want
	}
	if got := WakuHashN("item", -1, m); got != want%m {
		t.Errorf("i=-1: got %d, want %d", got, want%m)
	}
}

func TestWakuRepairEdgeCases(t *testing.T) {
	if got := WakuTReq("p", "m", 5*time.Second, 5*time.Second); got != 5*time.Second {
		t.Errorf("WakuTReq zero range = %v, want 5s", got)
	}
	if got := WakuTResp("p", "s", "m", 0); got != 0 {
		t.Errorf("WakuTResp tMax=0 = %v, want 0", got)
	}
	if got := WakuTResp("p", "p", "m", time.Minute); got != 0 {
		t.Errorf("WakuTResp self = %v, want 0", got)
	}
	if WakuInResponseGroup("p", "", "m", 1) {
		t.Errorf("empty sender must not be in the response group")
	}
	// Extremes must not panic.
	_ = WakuTReq("p", "m", math.MinInt64, math.MaxInt64)
	_ = WakuTResp("p", "s", "m", math.MinInt64)
	_ = WakuInResponseGroup("p", "s", "m", math.MaxInt)
	_ = WakuInResponseGroup("p", "s", "m", math.MinInt)
}

func TestMsToDuration(t *testing.T) {
	if got := msToDuration(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("saturation high: %v", got)
	}
	if got := msToDuration(math.MinInt64); got != math.MinInt64 {
		t.Errorf("saturation low: %v", got)
	}
	if got := msToDuration(1500); got != 1500*time.Millisecond {
		t.Errorf("1500ms: %v", got)
	}
}

var sink int64

func BenchmarkWakuSDS(b *testing.B) {
	s := strings.Repeat("0123456789abcdef", 4) // a hex SHA-256 message ID
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		sink += WakuSDS(s)
	}
}

func BenchmarkNimFarm(b *testing.B) {
	s := strings.Repeat("0123456789abcdef", 4)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		sink += NimFarm(s)
	}
}

func FuzzNoPanic(f *testing.F) {
	f.Add("msg1", "alice", 3, 150000, int64(30000), int64(120000), 10)
	f.Add("", "", -1, 0, int64(math.MinInt64), int64(math.MaxInt64), math.MinInt)
	f.Add("\xff\xfe日本😀", "x", math.MaxInt, math.MinInt, int64(0), int64(-1), math.MaxInt)
	f.Fuzz(func(t *testing.T, a, b string, i, m int, d1, d2 int64, n int) {
		if WakuSDS(a) < math.MinInt32 || WakuSDSJS(a) > math.MaxInt32 {
			t.Fatalf("hash of %q outside int32", a)
		}
		if isASCII(a) && WakuSDS(a) != WakuSDSJS(a) {
			t.Fatalf("ASCII mismatch for %q", a)
		}
		if p := WakuHashN(a, i, m); p < 0 || (m != 0 && uint64(p) >= absU64(int64(m))) {
			t.Fatalf("WakuHashN out of range: %d", p)
		}
		_ = WakuHashNJS(a, i, m)
		_ = NimFarm(a)
		tMin, tMax := time.Duration(d1), time.Duration(d2)
		_ = WakuTReq(a, b, tMin, tMax)
		_ = WakuTResp(a, b, a+b, tMax)
		_ = WakuInResponseGroup(a, b, a, n)
		_ = NimTReq(a, b, tMin, tMax)
		if r := NimTResp(a, b, a+b, tMax); r < 0 {
			t.Fatalf("NimTResp negative: %v", r)
		}
		_ = NimInResponseGroup(a, b, a, n)
	})
}
