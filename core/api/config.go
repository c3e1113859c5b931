// Package api holds the core side of the IDL's ReliabilityManager service: the mapping
// between the IDL's messages and the Go engine (configuration, persistence choice,
// results), and the typed server that the generated dispatch tables call — the one
// implementation behind sdk-go, the C glue and the wasm glue.
package api

import (
	"time"

	"github.com/sdskit/sdskit/core/sds"
	"github.com/sdskit/sdskit/core/sdserr"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// ConfigFromProto returns sds.DefaultConfig with every field set in c applied, or
// INVALID_ARGUMENT naming the first bad field.
func ConfigFromProto(c *pb.Config) (sds.Config, error) {
	cfg := sds.DefaultConfig()
	if c == nil {
		return cfg, nil
	}
	switch c.GetProfile() {
	case pb.WireProfile_WIRE_PROFILE_UNSPECIFIED, pb.WireProfile_WIRE_PROFILE_SPEC:
		cfg.Profile = "spec"
	case pb.WireProfile_WIRE_PROFILE_NIM:
		cfg.Profile = "nim"
	default:
		return cfg, sdserr.New(sdserr.InvalidArgument, "Config", "profile: unknown wire profile %d", int32(c.GetProfile()))
	}
	switch c.GetLostMessagePolicy() {
	case pb.LostMessagePolicy_LOST_MESSAGE_POLICY_UNSPECIFIED, pb.LostMessagePolicy_LOST_MESSAGE_POLICY_DELIVER:
		cfg.LostPolicy = sds.LostDeliver
	case pb.LostMessagePolicy_LOST_MESSAGE_POLICY_DROP:
		cfg.LostPolicy = sds.LostDrop
	default:
		return cfg, sdserr.New(sdserr.InvalidArgument, "Config", "lost_message_policy: unknown policy %d", int32(c.GetLostMessagePolicy()))
	}
	setInt := func(dst *int, v *uint32) {
		if v != nil {
			*dst = int(*v)
		}
	}
	setFloat := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	var tooLong string
	setMs := func(name string, dst *time.Duration, v *uint64) {
		if v == nil {
			return
		}
		if *v > uint64(maxDurationMs) {
			tooLong = name
			return
		}
		*dst = time.Duration(*v) * time.Millisecond
	}
	setInt(&cfg.BloomCapacity, c.BloomCapacity)
	setFloat(&cfg.BloomErrorRate, c.BloomErrorRate)
	setInt(&cfg.MaxMessageHistory, c.MaxMessageHistory)
	setInt(&cfg.MaxCausalHistory, c.MaxCausalHistory)
	setInt(&cfg.SyncCausalHistory, c.SyncCausalHistory)
	setInt(&cfg.MaxMessageSize, c.MaxMessageSize)
	setMs("resend_interval_ms", &cfg.ResendInterval, c.ResendIntervalMs)
	setFloat(&cfg.ResendBackoff, c.ResendBackoff)
	setMs("max_resend_interval_ms", &cfg.MaxResendInterval, c.MaxResendIntervalMs)
	setInt(&cfg.MaxResendAttempts, c.MaxResendAttempts)
	setInt(&cfg.PossibleAcksThreshold, c.PossibleAcksThreshold)
	setMs("sync_interval_ms", &cfg.SyncInterval, c.SyncIntervalMs)
	setFloat(&cfg.SyncJitter, c.SyncJitter)
	setMs("sweep_interval_ms", &cfg.SweepInterval, c.SweepIntervalMs)
	setMs("incoming_timeout_ms", &cfg.IncomingTimeout, c.IncomingTimeoutMs)
	setMs("repair_t_min_ms", &cfg.RepairTMin, c.RepairTMinMs)
	setMs("repair_t_max_ms", &cfg.RepairTMax, c.RepairTMaxMs)
	setInt(&cfg.NumResponseGroups, c.NumResponseGroups)
	setInt(&cfg.MaxRepairRequests, c.MaxRepairRequests)
	setInt(&cfg.MaxRepairAttempts, c.MaxRepairAttempts)
	setMs("repair_retry_max_interval_ms", &cfg.RepairRetryMaxInterval, c.RepairRetryMaxIntervalMs)
	setInt(&cfg.SyncUnreferencedRounds, c.SyncUnreferencedRounds)
	setMs("bloom_repair_after_ms", &cfg.BloomRepairAfter, c.BloomRepairAfterMs)
	setInt(&cfg.MaxIncomingBuffer, c.MaxIncomingBuffer)
	setInt(&cfg.MaxRepairBuffer, c.MaxRepairBuffer)
	if tooLong != "" {
		return cfg, sdserr.New(sdserr.InvalidArgument, "Config", "%s: over the maximum of %d ms", tooLong, maxDurationMs)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// maxDurationMs keeps millisecond values convertible to time.Duration without overflow.
const maxDurationMs = int64(1<<63-1) / int64(time.Millisecond)
