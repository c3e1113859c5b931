package hash

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/bits"
	"time"
)

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER (2^53 - 1), which
// @waku/sds uses as an extra modulus when turning a BigInt into a Number.
const maxSafeInteger = 1<<53 - 1

// SHA256Prefix returns the first 8 bytes of SHA-256(s), read as a big-endian uint64.
// This is the hashToInteger function of @waku/sds 0.0.8 (s is hashed as its UTF-8 bytes).
func SHA256Prefix(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(sum[:8])
}

// msToDuration converts milliseconds to a Duration, saturating instead of
// wrapping when the value does not fit.
func msToDuration(ms int64) time.Duration {
	const limit = math.MaxInt64 / int64(time.Millisecond)
	switch {
	case ms > limit:
		return math.MaxInt64
	case ms < -limit:
		return math.MinInt64
	}
	return time.Duration(ms) * time.Millisecond
}

// WakuTReq returns the repair-request delay (T_req minus the current time) that
// @waku/sds 0.0.8 computes: tMin + SHA256Prefix(participantID+messageID) mod (tMax-tMin), in whole ms.
// Durations are truncated to milliseconds; if tMax == tMin it returns tMin (the JavaScript throws).
func WakuTReq(participantID, messageID string, tMin, tMax time.Duration) time.Duration {
	tMinMs := tMin.Milliseconds()
	rng := tMax.Milliseconds() - tMinMs // cannot overflow: both are within ±2^63/1e6
	if rng == 0 {
		return msToDuration(tMinMs)
	}
	// BigInt % keeps the sign of the (non-negative) dividend, so a negative
	// range behaves like its absolute value.
	off := SHA256Prefix(participantID+messageID) % absU64(rng)
	off %= maxSafeInteger
	return msToDuration(tMinMs + int64(off))
}

// WakuTResp returns the repair-response delay (T_resp minus the current time) that
// @waku/sds 0.0.8 computes: ((H(p) XOR H(s)) * H(m)) mod tMax with the product taken exactly (BigInt), H = SHA256Prefix.
// tMax is truncated to milliseconds; if it is 0 the result is 0 (the JavaScript throws).
func WakuTResp(participantID, senderID, messageID string, tMax time.Duration) time.Duration {
	mod := absU64(tMax.Milliseconds())
	if mod == 0 {
		return 0
	}
	distance := SHA256Prefix(participantID) ^ SHA256Prefix(senderID)
	hi, lo := bits.Mul64(distance, SHA256Prefix(messageID))
	off := bits.Rem64(hi, lo, mod) % maxSafeInteger
	return msToDuration(int64(off))
}

// WakuInResponseGroup reports whether participantID answers repair requests for messageID
// sent by senderID, as @waku/sds 0.0.8 decides it (false for an empty senderID, true if numGroups <= 1).
// Otherwise it compares SHA256Prefix(participantID+messageID) and SHA256Prefix(senderID+messageID) modulo numGroups.
func WakuInResponseGroup(participantID, senderID, messageID string, numGroups int) bool {
	if senderID == "" {
		return false
	}
	if numGroups <= 1 {
		return true
	}
	n := uint64(numGroups)
	return SHA256Prefix(participantID+messageID)%n == SHA256Prefix(senderID+messageID)%n
}
