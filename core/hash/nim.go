package hash

import (
	"time"

	farm "github.com/dgryski/go-farm"
)

// NimFarm returns Nim 2.2's hash(string): FarmHash Fingerprint64 of the bytes of s
// reinterpreted as a signed 64-bit integer.
func NimFarm(s string) int64 {
	return int64(farm.Fingerprint64([]byte(s)))
}

// NimTReq returns the nim-sds repair-request delay: tMin + |NimFarm(p+m)| mod (tMax-tMin),
// computed in whole milliseconds; it returns tMin when tMax-tMin <= 0.
func NimTReq(participantID, messageID string, tMin, tMax time.Duration) time.Duration {
	tMinMs := tMin.Milliseconds()
	rng := tMax.Milliseconds() - tMinMs
	if rng <= 0 {
		return msToDuration(tMinMs)
	}
	off := absU64(NimFarm(participantID+messageID)) % uint64(rng)
	return msToDuration(tMinMs + int64(off))
}

// NimTResp returns the nim-sds repair-response delay in whole milliseconds:
// ((d mod tMax) * (|NimFarm(m)| mod tMax)) mod tMax with d = |NimFarm(p) XOR NimFarm(s)|, 0 if tMax <= 0 or d == 0.
func NimTResp(participantID, senderID, messageID string, tMax time.Duration) time.Duration {
	tMaxMs := tMax.Milliseconds()
	if tMaxMs <= 0 {
		return 0
	}
	distance := absU64(NimFarm(participantID) ^ NimFarm(senderID))
	if distance == 0 {
		return 0
	}
	mod := uint64(tMaxMs)
	// The product is taken in uint64 like nim-sds does, wrapping if it exceeds 2^64.
	off := ((distance % mod) * (absU64(NimFarm(messageID)) % mod)) % mod
	return msToDuration(int64(off))
}

// NimInResponseGroup reports whether participantID is in the nim-sds response group of senderID
// for messageID: true if numGroups <= 1, else |NimFarm(p+m)| mod N == |NimFarm(s+m)| mod N.
func NimInResponseGroup(participantID, senderID, messageID string, numGroups int) bool {
	if numGroups <= 1 {
		return true
	}
	n := uint64(numGroups)
	return absU64(NimFarm(participantID+messageID))%n == absU64(NimFarm(senderID+messageID))%n
}
