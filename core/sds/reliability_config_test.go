package sds

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/sdserr"
)

func TestConfigValidation_EveryFieldIsRangeChecked(t *testing.T) {
	type mut func(*Config)
	cases := []struct {
		field string
		set   mut
	}{
		{"Profile", func(c *Config) { c.Profile = "bogus" }},
		{"BloomCapacity", func(c *Config) { c.BloomCapacity = 0 }},
		{"BloomCapacity", func(c *Config) { c.BloomCapacity = -1 }},
		{"BloomCapacity", func(c *Config) { c.BloomCapacity = 10_000_000 }}, // needs too many bits
		{"BloomErrorRate", func(c *Config) { c.BloomErrorRate = 0 }},
		{"BloomErrorRate", func(c *Config) { c.BloomErrorRate = 1 }},
		{"BloomErrorRate", func(c *Config) { c.BloomErrorRate = -0.5 }},
		{"BloomErrorRate", func(c *Config) { c.BloomErrorRate = math.NaN() }},
		{"BloomErrorRate", func(c *Config) { c.BloomErrorRate = math.Inf(1) }},
		{"BloomErrorRate", func(c *Config) { c.BloomErrorRate = 1e-15 }}, // needs too many hashes
		{"MaxMessageHistory", func(c *Config) { c.MaxMessageHistory = 0 }},
		{"MaxCausalHistory", func(c *Config) { c.MaxCausalHistory = -1 }},
		{"MaxCausalHistory", func(c *Config) { c.MaxCausalHistory, c.SyncCausalHistory = 1025, 1025 }},
		{"MaxCausalHistory", func(c *Config) { c.Limits.MaxCausalHistory = 1 }}, // over the decoding limit
		{"SyncCausalHistory", func(c *Config) { c.SyncCausalHistory = 1 }},      // below MaxCausalHistory
		{"SyncCausalHistory", func(c *Config) { c.SyncCausalHistory = 1025 }},
		{"MaxMessageSize", func(c *Config) { c.MaxMessageSize = 0 }},
		{"MaxMessageSize", func(c *Config) { c.MaxMessageSize = 1<<20 + 1 }},
		{"ResendInterval", func(c *Config) { c.ResendInterval = 0 }},
		{"ResendInterval", func(c *Config) { c.ResendInterval = -time.Second }},
		{"ResendBackoff", func(c *Config) { c.ResendBackoff = 0.99 }},
		{"ResendBackoff", func(c *Config) { c.ResendBackoff = math.NaN() }},
		{"ResendBackoff", func(c *Config) { c.ResendBackoff = math.Inf(1) }},
		{"MaxResendInterval", func(c *Config) { c.MaxResendInterval = c.ResendInterval - 1 }},
		{"MaxResendAttempts", func(c *Config) { c.MaxResendAttempts = -1 }},
		{"MaxResendAttempts", func(c *Config) { c.MaxResendAttempts = 1001 }},
		{"PossibleAcksThreshold", func(c *Config) { c.PossibleAcksThreshold = 0 }},
		{"SyncInterval", func(c *Config) { c.SyncInterval = 0 }},
		{"SyncJitter", func(c *Config) { c.SyncJitter = -0.01 }},
		{"SyncJitter", func(c *Config) { c.SyncJitter = 1 }},
		{"SyncJitter", func(c *Config) { c.SyncJitter = math.NaN() }},
		{"SweepInterval", func(c *Config) { c.SweepInterval = 0 }},
		{"SweepInterval", func(c *Config) { c.SweepInterval = time.Millisecond - 1 }},
		{"IncomingTimeout", func(c *Config) { c.IncomingTimeout = -1 }},
		{"LostPolicy", func(c *Config) { c.LostPolicy = 2 }},
		{"LostPolicy", func(c *Config) { c.LostPolicy = -1 }},
		{"RepairTMin", func(c *Config) { c.RepairTMin = -1 }},
		{"RepairTMax", func(c *Config) { c.RepairTMax = c.RepairTMin }},
		{"NumResponseGroups", func(c *Config) { c.NumResponseGroups = 0 }},
		{"MaxRepairRequests", func(c *Config) { c.MaxRepairRequests = -1 }},
		{"MaxRepairRequests", func(c *Config) { c.MaxRepairRequests = 65 }},
		{"MaxRepairAttempts", func(c *Config) { c.MaxRepairAttempts = 0 }},
		{"MaxRepairAttempts", func(c *Config) { c.MaxRepairAttempts = 1001 }},
		{"MaxIncomingBuffer", func(c *Config) { c.MaxIncomingBuffer = 0 }},
		{"MaxRepairBuffer", func(c *Config) { c.MaxRepairBuffer = 0 }},
		{"RepairRetryMaxInterval", func(c *Config) { c.RepairRetryMaxInterval = -time.Second }},
		{"SyncUnreferencedRounds", func(c *Config) { c.SyncUnreferencedRounds = -1 }},
		{"BloomRepairAfter", func(c *Config) { c.BloomRepairAfter = -time.Second }},
		{"Limits.MaxMessageBytes", func(c *Config) { c.Limits.MaxMessageBytes = -1 }},
		{"Limits.MaxContentBytes", func(c *Config) { c.Limits.MaxContentBytes = -1 }},
		{"Limits.MaxIDBytes", func(c *Config) { c.Limits.MaxIDBytes = -1 }},
		{"Limits.MaxHintBytes", func(c *Config) { c.Limits.MaxHintBytes = -1 }},
		{"Limits.MaxCausalHistory", func(c *Config) { c.Limits.MaxCausalHistory = -1 }},
		{"Limits.MaxRepairRequests", func(c *Config) { c.Limits.MaxRepairRequests = -1 }},
		{"Limits.MaxBloomBytes", func(c *Config) { c.Limits.MaxBloomBytes = -1 }},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.field] = true
		cfg := DefaultConfig()
		c.set(&cfg)
		err := cfg.Validate()
		if err == nil {
			t.Errorf("%s: %+v validates", c.field, cfg)
			continue
		}
		if sdserr.CodeOf(err) != sdserr.InvalidArgument || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %v (code %v) does not name the field as INVALID_ARGUMENT", c.field, err, sdserr.CodeOf(err))
		}
		m, err := New("alice", cfg)
		if m != nil || sdserr.CodeOf(err) != sdserr.InvalidArgument {
			t.Errorf("%s: New returned %v, %v", c.field, m, err)
		}
	}
	// Every field, including every Limits field, has a case.
	ct := reflect.TypeOf(Config{})
	for i := 0; i < ct.NumField(); i++ {
		f := ct.Field(i)
		if f.Type.Kind() == reflect.Struct {
			for j := 0; j < f.Type.NumField(); j++ {
				if name := f.Name + "." + f.Type.Field(j).Name; !covered[name] {
					t.Errorf("no validation case for %s", name)
				}
			}
			continue
		}
		if !covered[f.Name] {
			t.Errorf("no validation case for %s", f.Name)
		}
	}
}

func TestConfigValidation_BoundaryValuesAreAccepted(t *testing.T) {
	for name, set := range map[string]func(*Config){
		"default":                 func(*Config) {},
		"MaxResendAttempts 0":     func(c *Config) { c.MaxResendAttempts = 0 },
		"MaxCausalHistory 0":      func(c *Config) { c.MaxCausalHistory = 0 },
		"SyncCausalHistory = Max": func(c *Config) { c.SyncCausalHistory = c.MaxCausalHistory },
		"history at the limit":    func(c *Config) { c.MaxCausalHistory, c.SyncCausalHistory = 1024, 1024 },
		"MaxMessageSize 1":        func(c *Config) { c.MaxMessageSize = 1 },
		"ResendBackoff 1":         func(c *Config) { c.ResendBackoff = 1 },
		"MaxResendInterval = ResendInterval": func(c *Config) {
			c.MaxResendInterval = c.ResendInterval
		},
		"SyncJitter 0":              func(c *Config) { c.SyncJitter = 0 },
		"SweepInterval 1ms":         func(c *Config) { c.SweepInterval = time.Millisecond },
		"RepairTMin 0":              func(c *Config) { c.RepairTMin = 0 },
		"RepairTMax = RepairTMin+1": func(c *Config) { c.RepairTMax = c.RepairTMin + time.Millisecond },
		"MaxRepairRequests 0":       func(c *Config) { c.MaxRepairRequests = 0 },
		"MaxRepairAttempts 1":       func(c *Config) { c.MaxRepairAttempts = 1 },
		"MaxIncomingBuffer 1":       func(c *Config) { c.MaxIncomingBuffer = 1 },
		"MaxRepairBuffer 1":         func(c *Config) { c.MaxRepairBuffer = 1 },
		"LostDrop":                  func(c *Config) { c.LostPolicy = LostDrop },
		"PossibleAcksThreshold 1":   func(c *Config) { c.PossibleAcksThreshold = 1 },
		"BloomCapacity 1":           func(c *Config) { c.BloomCapacity = 1 },
		"zero Limits (defaults)":    func(c *Config) { c.Limits = Config{}.Limits },
		"empty Profile (spec)":      func(c *Config) { c.Profile = "" },
	} {
		cfg := DefaultConfig()
		set(&cfg)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		m, err := New("alice", cfg)
		if err != nil {
			t.Errorf("%s: New: %v", name, err)
			continue
		}
		if _, err := m.WrapOutgoingMessage(relCtx, relCh, "m", []byte("x")); err != nil {
			t.Errorf("%s: wrap: %v", name, err)
		}
		m.Close()
	}
}

func TestConfigValidation_ParticipantIDAndOptions(t *testing.T) {
	for name, c := range map[string]struct {
		id   string
		opts []Option
	}{
		"participant id over the cap": {strings.Repeat("p", 257), nil},
		"invalid UTF-8 participant":   {"p\xff", nil},
		"nil backend":                 {"p", []Option{WithBackend(nil)}},
		"nil clock":                   {"p", []Option{WithClock(nil)}},
		"nil logger":                  {"p", []Option{WithLogger(nil)}},
	} {
		m, err := New(c.id, DefaultConfig(), c.opts...)
		if m != nil || sdserr.CodeOf(err) != sdserr.InvalidArgument {
			t.Errorf("%s: %v, %v", name, m, err)
		}
	}
	if _, err := New(strings.Repeat("p", 256), DefaultConfig()); err != nil {
		t.Errorf("participant id of 256 bytes: %v", err)
	}
}
