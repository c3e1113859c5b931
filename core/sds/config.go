package sds

import (
	"math"
	"time"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/profile"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/wire"
)

// LostPolicy says what happens to a buffered message whose dependencies did not arrive
// within Config.IncomingTimeout.
type LostPolicy int

const (
	// LostDeliver delivers the message anyway (after a MessageLost event), so the
	// participant keeps taking part in the conversation.
	LostDeliver LostPolicy = iota
	// LostDrop drops the message (after a MessageLost event).
	LostDrop
)

// Config tunes a Manager. Start from DefaultConfig; New rejects out-of-range values with
// INVALID_ARGUMENT naming the field.
type Config struct {
	// Profile is the wire profile of every channel ("spec" or "nim", see docs/wire-profiles.md).
	Profile string
	// BloomCapacity is the number of ids the channel's bloom filter summarises.
	BloomCapacity int
	// BloomErrorRate is the filter's false-positive rate at capacity.
	BloomErrorRate float64
	// MaxMessageHistory bounds the local log; the oldest messages are evicted.
	MaxMessageHistory int
	// MaxCausalHistory is the number of recent log entries attached to each message.
	MaxCausalHistory int
	// SyncCausalHistory is the number of recent log entries attached to sync messages:
	// larger than MaxCausalHistory so that a peer that missed a message nobody references
	// any more (it arrived late and fell out of every causal history) still detects the gap.
	SyncCausalHistory int
	// SyncUnreferencedRounds is how many sync intervals after its delivery a message that
	// no content message has referenced is also named in our sync messages (at most
	// SyncCausalHistory of them, besides the newest entries). Without it, a message posted
	// concurrently with the next ones — which therefore do not reference it — is never
	// named again once newer messages push it out of the newest entries, and a peer that
	// missed it never learns it exists. 0 disables it (nim-sds and @waku/sds behaviour).
	SyncUnreferencedRounds int
	// BloomRepairAfter, when positive, lets a received sync message whose bloom filter
	// lacks messages of our log older than this (and newer than the oldest of our log the
	// filter holds: a peer back from an absence, not one that joined later) schedule
	// their rebroadcast as SDS-R answers (T_resp, response groups, cancelled by another
	// peer's copy). A participant offline while a message was only named in sync
	// messages (unreferenced) learns of it no other way. Zero: nim-sds's behaviour.
	BloomRepairAfter time.Duration
	// MaxMessageSize bounds the content of a message, in bytes.
	MaxMessageSize int
	// ResendInterval is how long an unacknowledged message waits before its first resend.
	ResendInterval time.Duration
	// ResendBackoff multiplies the wait after every resend (≥ 1).
	ResendBackoff float64
	// MaxResendInterval caps the wait between resends.
	MaxResendInterval time.Duration
	// MaxResendAttempts is the number of resends before giving up (0: give up at the
	// first expiry).
	MaxResendAttempts int
	// PossibleAcksThreshold is the number of distinct peers whose bloom filter must hold
	// a message before it counts as acknowledged.
	PossibleAcksThreshold int
	// SyncInterval is the period of SyncDue events per channel.
	SyncInterval time.Duration
	// SyncJitter spreads SyncDue events by ± this fraction of SyncInterval (0 ≤ j < 1).
	SyncJitter float64
	// SweepInterval is the period of the background sweep started by StartPeriodicTasks.
	SweepInterval time.Duration
	// IncomingTimeout, when positive, bounds how long a message waits for missing
	// dependencies before a MessageLost event.
	IncomingTimeout time.Duration
	// LostPolicy says what happens to such a message.
	LostPolicy LostPolicy
	// RepairTMin and RepairTMax are SDS-R's T_min and T_max.
	RepairTMin, RepairTMax time.Duration
	// NumResponseGroups partitions SDS-R responders (1: everybody responds).
	NumResponseGroups int
	// MaxRepairRequests is the number of repair requests attached to each message.
	MaxRepairRequests int
	// MaxRepairAttempts is how often one missing message is requested: a request whose
	// answer is lost is re-armed with a fresh T_req until the message arrives or this
	// many requests went out.
	MaxRepairAttempts int
	// RepairRetryMaxInterval, when positive, keeps a gap alive after MaxRepairAttempts
	// requests while a buffered message still depends on it: it is requested again, the
	// wait doubling from T_req up to this interval, because otherwise that message waits
	// forever once every request or answer was lost. Zero forgets the gap (nim-sds).
	RepairRetryMaxInterval time.Duration
	// MaxIncomingBuffer bounds the messages waiting for dependencies; when full, the
	// oldest waiting message is dropped with a MessageLost event, so a hostile or broken
	// peer cannot grow memory without limit.
	MaxIncomingBuffer int
	// MaxRepairBuffer bounds each SDS-R buffer (requests we may send, requests we may
	// answer); when full, the entry due last is dropped.
	MaxRepairBuffer int
	// Limits bounds what is accepted from the network.
	Limits wire.Limits
}

// DefaultConfig returns the recommended configuration.
func DefaultConfig() Config {
	return Config{
		Profile:                profile.Spec.Name,
		BloomCapacity:          10000,
		BloomErrorRate:         0.001,
		MaxMessageHistory:      1000,
		MaxCausalHistory:       2,
		SyncCausalHistory:      20,
		SyncUnreferencedRounds: 3,
		BloomRepairAfter:       5 * time.Minute,
		MaxMessageSize:         1 << 20,
		ResendInterval:         30 * time.Second,
		ResendBackoff:          2,
		MaxResendInterval:      10 * time.Minute,
		MaxResendAttempts:      5,
		PossibleAcksThreshold:  2,
		SyncInterval:           30 * time.Second,
		SyncJitter:             0.2,
		SweepInterval:          time.Second,
		IncomingTimeout:        0,
		LostPolicy:             LostDeliver,
		RepairTMin:             30 * time.Second,
		RepairTMax:             120 * time.Second,
		NumResponseGroups:      1,
		MaxRepairRequests:      3,
		MaxRepairAttempts:      5,
		RepairRetryMaxInterval: time.Minute,
		MaxIncomingBuffer:      10000,
		MaxRepairBuffer:        1000,
		Limits:                 wire.DefaultLimits(),
	}
}

// Validate reports the first out-of-range field as INVALID_ARGUMENT.
func (c Config) Validate() error {
	bad := func(field, want string, got any) error {
		return sdserr.New(sdserr.InvalidArgument, "Config", "%s must be %s (got %v)", field, want, got)
	}
	if _, err := profile.ByName(c.Profile); err != nil {
		return sdserr.New(sdserr.InvalidArgument, "Config", "Profile: %v", err)
	}
	if c.BloomCapacity < 1 {
		return bad("BloomCapacity", "≥ 1", c.BloomCapacity)
	}
	if !(c.BloomErrorRate > 0 && c.BloomErrorRate < 1) {
		return bad("BloomErrorRate", "in (0, 1)", c.BloomErrorRate)
	}
	if _, _, err := bloom.Size(c.BloomCapacity, c.BloomErrorRate); err != nil {
		return sdserr.New(sdserr.InvalidArgument, "Config", "BloomCapacity/BloomErrorRate: %v", err)
	}
	if c.MaxMessageHistory < 1 {
		return bad("MaxMessageHistory", "≥ 1", c.MaxMessageHistory)
	}
	if c.MaxCausalHistory < 0 || c.MaxCausalHistory > c.limits().MaxCausalHistory {
		return bad("MaxCausalHistory", "in [0, Limits.MaxCausalHistory]", c.MaxCausalHistory)
	}
	if c.SyncCausalHistory < c.MaxCausalHistory || c.SyncCausalHistory > c.limits().MaxCausalHistory {
		return bad("SyncCausalHistory", "in [MaxCausalHistory, Limits.MaxCausalHistory]", c.SyncCausalHistory)
	}
	if c.MaxMessageSize < 1 || c.MaxMessageSize > c.limits().MaxContentBytes {
		return bad("MaxMessageSize", "in [1, Limits.MaxContentBytes]", c.MaxMessageSize)
	}
	if c.ResendInterval <= 0 {
		return bad("ResendInterval", "> 0", c.ResendInterval)
	}
	if !(c.ResendBackoff >= 1) || math.IsInf(c.ResendBackoff, 0) {
		return bad("ResendBackoff", "a finite number ≥ 1", c.ResendBackoff)
	}
	if c.MaxResendInterval < c.ResendInterval {
		return bad("MaxResendInterval", "≥ ResendInterval", c.MaxResendInterval)
	}
	if c.MaxResendAttempts < 0 || c.MaxResendAttempts > 1000 {
		return bad("MaxResendAttempts", "in [0, 1000]", c.MaxResendAttempts)
	}
	if c.PossibleAcksThreshold < 1 {
		return bad("PossibleAcksThreshold", "≥ 1", c.PossibleAcksThreshold)
	}
	if c.SyncInterval <= 0 {
		return bad("SyncInterval", "> 0", c.SyncInterval)
	}
	if !(c.SyncJitter >= 0 && c.SyncJitter < 1) {
		return bad("SyncJitter", "in [0, 1)", c.SyncJitter)
	}
	if c.SweepInterval < time.Millisecond {
		return bad("SweepInterval", "≥ 1ms", c.SweepInterval)
	}
	if c.IncomingTimeout < 0 {
		return bad("IncomingTimeout", "≥ 0", c.IncomingTimeout)
	}
	if c.LostPolicy != LostDeliver && c.LostPolicy != LostDrop {
		return bad("LostPolicy", "LostDeliver or LostDrop", int(c.LostPolicy))
	}
	if c.RepairTMin < 0 {
		return bad("RepairTMin", "≥ 0", c.RepairTMin)
	}
	if c.RepairTMax <= c.RepairTMin {
		return bad("RepairTMax", "> RepairTMin", c.RepairTMax)
	}
	if c.NumResponseGroups < 1 {
		return bad("NumResponseGroups", "≥ 1", c.NumResponseGroups)
	}
	if c.MaxRepairRequests < 0 || c.MaxRepairRequests > c.limits().MaxRepairRequests {
		return bad("MaxRepairRequests", "in [0, Limits.MaxRepairRequests]", c.MaxRepairRequests)
	}
	if c.MaxRepairAttempts < 1 || c.MaxRepairAttempts > 1000 {
		return bad("MaxRepairAttempts", "in [1, 1000]", c.MaxRepairAttempts)
	}
	if c.SyncUnreferencedRounds < 0 || c.SyncUnreferencedRounds > 1000 {
		return bad("SyncUnreferencedRounds", "in [0, 1000]", c.SyncUnreferencedRounds)
	}
	if c.BloomRepairAfter < 0 {
		return bad("BloomRepairAfter", "≥ 0", c.BloomRepairAfter)
	}
	if c.RepairRetryMaxInterval < 0 {
		return bad("RepairRetryMaxInterval", "≥ 0", c.RepairRetryMaxInterval)
	}
	if c.MaxIncomingBuffer < 1 {
		return bad("MaxIncomingBuffer", "≥ 1", c.MaxIncomingBuffer)
	}
	if c.MaxRepairBuffer < 1 {
		return bad("MaxRepairBuffer", "≥ 1", c.MaxRepairBuffer)
	}
	l := c.Limits
	for _, f := range []struct {
		name string
		v    int
	}{
		{"Limits.MaxMessageBytes", l.MaxMessageBytes}, {"Limits.MaxContentBytes", l.MaxContentBytes},
		{"Limits.MaxIDBytes", l.MaxIDBytes}, {"Limits.MaxHintBytes", l.MaxHintBytes},
		{"Limits.MaxCausalHistory", l.MaxCausalHistory}, {"Limits.MaxRepairRequests", l.MaxRepairRequests},
		{"Limits.MaxBloomBytes", l.MaxBloomBytes},
	} {
		if f.v < 0 {
			return bad(f.name, "≥ 0 (0 means the default)", f.v)
		}
	}
	return nil
}

// limits returns the effective limits (zero fields replaced by defaults).
func (c Config) limits() wire.Limits {
	d := wire.DefaultLimits()
	l := c.Limits
	pick := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	return wire.Limits{
		MaxMessageBytes:   pick(l.MaxMessageBytes, d.MaxMessageBytes),
		MaxContentBytes:   pick(l.MaxContentBytes, d.MaxContentBytes),
		MaxIDBytes:        pick(l.MaxIDBytes, d.MaxIDBytes),
		MaxHintBytes:      pick(l.MaxHintBytes, d.MaxHintBytes),
		MaxCausalHistory:  pick(l.MaxCausalHistory, d.MaxCausalHistory),
		MaxRepairRequests: pick(l.MaxRepairRequests, d.MaxRepairRequests),
		MaxBloomBytes:     pick(l.MaxBloomBytes, d.MaxBloomBytes),
	}
}
