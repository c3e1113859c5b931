package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/sds"
	"github.com/sdskit/sdskit/core/sdserr"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

func TestConfigFromProtoDefaults(t *testing.T) {
	for _, c := range []*pb.Config{nil, {}} {
		got, err := ConfigFromProto(c)
		if err != nil || got != sds.DefaultConfig() {
			t.Fatalf("ConfigFromProto(%v) = %+v, %v", c, got, err)
		}
	}
}

// Every field of the IDL's Config must reach the engine: set each one to a valid value
// different from the default and check that the mapped config differs from the default.
func TestConfigFromProtoMapsEveryField(t *testing.T) {
	values := map[string]func(*pb.Config){
		"profile":                      func(c *pb.Config) { c.Profile = pb.WireProfile_WIRE_PROFILE_SPEC }, // same as default, checked below
		"bloom_capacity":               func(c *pb.Config) { c.BloomCapacity = proto.Uint32(500) },
		"bloom_error_rate":             func(c *pb.Config) { c.BloomErrorRate = proto.Float64(0.01) },
		"max_message_history":          func(c *pb.Config) { c.MaxMessageHistory = proto.Uint32(50) },
		"max_causal_history":           func(c *pb.Config) { c.MaxCausalHistory = proto.Uint32(3) },
		"max_message_size":             func(c *pb.Config) { c.MaxMessageSize = proto.Uint32(1000) },
		"resend_interval_ms":           func(c *pb.Config) { c.ResendIntervalMs = proto.Uint64(1000) },
		"resend_backoff":               func(c *pb.Config) { c.ResendBackoff = proto.Float64(1.5) },
		"max_resend_interval_ms":       func(c *pb.Config) { c.MaxResendIntervalMs = proto.Uint64(60_000) },
		"max_resend_attempts":          func(c *pb.Config) { c.MaxResendAttempts = proto.Uint32(2) },
		"possible_acks_threshold":      func(c *pb.Config) { c.PossibleAcksThreshold = proto.Uint32(3) },
		"sync_interval_ms":             func(c *pb.Config) { c.SyncIntervalMs = proto.Uint64(5000) },
		"sync_jitter":                  func(c *pb.Config) { c.SyncJitter = proto.Float64(0) },
		"sweep_interval_ms":            func(c *pb.Config) { c.SweepIntervalMs = proto.Uint64(250) },
		"incoming_timeout_ms":          func(c *pb.Config) { c.IncomingTimeoutMs = proto.Uint64(9000) },
		"lost_message_policy":          func(c *pb.Config) { c.LostMessagePolicy = pb.LostMessagePolicy_LOST_MESSAGE_POLICY_DROP },
		"repair_t_min_ms":              func(c *pb.Config) { c.RepairTMinMs = proto.Uint64(1000) },
		"repair_t_max_ms":              func(c *pb.Config) { c.RepairTMaxMs = proto.Uint64(60_000) },
		"num_response_groups":          func(c *pb.Config) { c.NumResponseGroups = proto.Uint32(4) },
		"max_repair_requests":          func(c *pb.Config) { c.MaxRepairRequests = proto.Uint32(2) },
		"max_repair_attempts":          func(c *pb.Config) { c.MaxRepairAttempts = proto.Uint32(7) },
		"sync_causal_history":          func(c *pb.Config) { c.SyncCausalHistory = proto.Uint32(30) },
		"max_incoming_buffer":          func(c *pb.Config) { c.MaxIncomingBuffer = proto.Uint32(99) },
		"max_repair_buffer":            func(c *pb.Config) { c.MaxRepairBuffer = proto.Uint32(98) },
		"repair_retry_max_interval_ms": func(c *pb.Config) { c.RepairRetryMaxIntervalMs = proto.Uint64(0) },
		"sync_unreferenced_rounds":     func(c *pb.Config) { c.SyncUnreferencedRounds = proto.Uint32(0) },
		"bloom_repair_after_ms":        func(c *pb.Config) { c.BloomRepairAfterMs = proto.Uint64(0) },
	}
	fields := (&pb.Config{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		name := string(fields.Get(i).Name())
		set, ok := values[name]
		if !ok {
			t.Errorf("no mapping test for Config.%s: add it here and to ConfigFromProto", name)
			continue
		}
		c := &pb.Config{}
		set(c)
		got, err := ConfigFromProto(c)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if name != "profile" && got == sds.DefaultConfig() {
			t.Errorf("Config.%s is not mapped to the engine", name)
		}
	}
}

func TestConfigFromProtoRejects(t *testing.T) {
	for name, c := range map[string]*pb.Config{
		"unknown profile": {Profile: pb.WireProfile(42)},
		"unknown policy":  {LostMessagePolicy: pb.LostMessagePolicy(9)},
		"zero capacity":   {BloomCapacity: proto.Uint32(0)},
		"huge duration":   {ResendIntervalMs: proto.Uint64(1 << 63)},
		"tmax below tmin": {RepairTMinMs: proto.Uint64(10_000), RepairTMaxMs: proto.Uint64(5_000)},
		"bad error rate":  {BloomErrorRate: proto.Float64(1.5)},
		"too many rounds": {SyncUnreferencedRounds: proto.Uint32(5000)},
	} {
		_, err := ConfigFromProto(c)
		if !errors.Is(err, sdserr.Is(sdserr.InvalidArgument)) {
			t.Errorf("%s: err = %v, want INVALID_ARGUMENT", name, err)
		}
	}
	got, _ := ConfigFromProto(&pb.Config{ResendIntervalMs: proto.Uint64(1500)})
	if got.ResendInterval != 1500*time.Millisecond {
		t.Fatalf("ResendInterval = %v", got.ResendInterval)
	}
}

// WIRE_PROFILE_NIM selects the nim profile: a manager built from it speaks nim-sds's
// wire format (fields 1, 2, 4, 5 and 6 always emitted).
func TestConfigFromProtoSelectsNimProfile(t *testing.T) {
	cfg, err := ConfigFromProto(&pb.Config{Profile: pb.WireProfile_WIRE_PROFILE_NIM})
	if err != nil || cfg.Profile != "nim" {
		t.Fatalf("ConfigFromProto(NIM) = %q, %v", cfg.Profile, err)
	}
	m, err := sds.New("alice", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, err := m.WrapOutgoingMessage(context.Background(), "ch", "m1", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	// nim-sds's encoder starts with field 1 (message_id) and field 2 (lamport varint).
	if len(b) < 6 || b[0] != 0x0a || b[1] != 2 || string(b[2:4]) != "m1" || b[4] != 0x10 {
		t.Fatalf("not a nim-profile message: % x", b[:min(len(b), 8)])
	}
}
