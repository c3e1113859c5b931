package sdskit_test

// The Go runner of the language-neutral conformance scenarios (idl/conformance): every
// scenario file runs as one subtest, through the SDK's public surface only — New with
// WithConfig / WithPersistence(MemoryPersistence) / WithEventFunc / WithClock /
// WithRetrievalHints, and the Manager's methods. The format is documented in
// idl/conformance/README.md; the Python and TypeScript runners execute the same files.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/profile"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	sdskit "github.com/sdskit/sdskit/sdk-go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	conformanceDir     = "../idl/conformance"
	defaultStartUnixMs = 1_700_000_000_000
	defaultChannel     = "testChannel"
)

// --- the scenario format (mirrors idl/conformance/scenario.schema.json) ---------------

type scenario struct {
	Schema      string `json:"$schema"`
	Name        string `json:"name"`
	Catalogue   string `json:"catalogue"`
	Description string `json:"description"`
	Notes       string `json:"notes"`
	StartUnixMs *int64 `json:"start_unix_ms"`
	Channel     string `json:"channel"`
	Steps       []step `json:"steps"`
}

type step struct {
	Op          string  `json:"op"`
	Comment     string  `json:"comment"`
	Participant string  `json:"participant"`
	Channel     *string `json:"channel"`

	// create
	ParticipantID       *string         `json:"participant_id"`
	Config              json.RawMessage `json:"config"`
	Persistence         string          `json:"persistence"`
	RetrievalHintPrefix *string         `json:"retrieval_hint_prefix"`

	// wrap, wrap_ephemeral
	MessageID     *string `json:"message_id"`
	Content       *string `json:"content"`
	ContentBase64 *string `json:"content_base64"`
	ContentSize   *int    `json:"content_size"`

	// deliver, check
	Bytes         string       `json:"bytes"`
	BytesBase64   *string      `json:"bytes_base64"`
	Message       *messageSpec `json:"message"`
	RetrievalHint *string      `json:"retrieval_hint"`

	// wrap, wrap_ephemeral, build_sync, deliver
	SaveAs string `json:"save_as"`

	// mark_dependencies_met
	MessageIDs []string `json:"message_ids"`

	// advance_clock
	Ms *int64 `json:"ms"`

	// fail_persistence, heal_persistence
	Operation string `json:"operation"`
	Nth       *int   `json:"nth"`

	Expect *expect `json:"expect"`
}

// messageSpec is a hand-described SdsMessage; the runner encodes it.
type messageSpec struct {
	SenderID       string      `json:"sender_id"`
	MessageID      string      `json:"message_id"`
	ChannelID      *string     `json:"channel_id"`
	Lamport        *uint64     `json:"lamport"`
	CausalHistory  []entrySpec `json:"causal_history"`
	RepairRequest  []entrySpec `json:"repair_request"`
	BloomOf        *[]string   `json:"bloom_of"`
	BloomCapacity  *int        `json:"bloom_capacity"`
	BloomErrorRate *float64    `json:"bloom_error_rate"`
	BloomBase64    *string     `json:"bloom_base64"`
	Content        *string     `json:"content"`
	ContentBase64  *string     `json:"content_base64"`
	ContentSize    *int        `json:"content_size"`
}

// entrySpec is a HistoryEntry: a bare string is the message id.
type entrySpec struct {
	MessageID           string  `json:"message_id"`
	SenderID            *string `json:"sender_id"`
	RetrievalHint       *string `json:"retrieval_hint"`
	RetrievalHintBase64 *string `json:"retrieval_hint_base64"`
}

func (e *entrySpec) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &e.MessageID)
	}
	type plain entrySpec
	return strictUnmarshal(b, (*plain)(e))
}

type expect struct {
	Error            *string        `json:"error"`
	ErrorContains    *string        `json:"error_contains"`
	Result           *resultMatch   `json:"result"`
	Message          *messageMatch  `json:"message"`
	Events           *[]eventMatch  `json:"events"`
	EventsMode       string         `json:"events_mode"`
	EventsExcluded   []eventMatch   `json:"events_excluded"`
	State            *stateMatch    `json:"state"`
	Persisted        *stateMatch    `json:"persisted"`
	PersistenceCalls map[string]int `json:"persistence_calls"`
	Channels         *[]string      `json:"channels"`
	PersistedChans   *[]string      `json:"persisted_channels"`
}

type resultMatch struct {
	Kind           *string       `json:"kind"`
	Delivered      *bool         `json:"delivered"`
	MessageID      *string       `json:"message_id"`
	ChannelID      *string       `json:"channel_id"`
	SenderID       *string       `json:"sender_id"`
	Content        *string       `json:"content"`
	Lamport        *numMatch     `json:"lamport"`
	Missing        *[]string     `json:"missing"`
	MissingEntries *[]entryMatch `json:"missing_entries"`
}

type entryMatch struct {
	MessageID     string  `json:"message_id"`
	SenderID      *string `json:"sender_id"`
	RetrievalHint *string `json:"retrieval_hint"`
}

type messageMatch struct {
	Kind                 *string       `json:"kind"`
	MessageID            *string       `json:"message_id"`
	SenderID             *string       `json:"sender_id"`
	ChannelID            *string       `json:"channel_id"`
	HasLamport           *bool         `json:"has_lamport"`
	Lamport              *numMatch     `json:"lamport"`
	SaveLamportAs        string        `json:"save_lamport_as"`
	Content              *string       `json:"content"`
	CausalHistory        *[]string     `json:"causal_history"`
	CausalHistoryEntries *[]entryMatch `json:"causal_history_entries"`
	RepairRequest        *[]string     `json:"repair_request"`
	RepairRequestEntries *[]entryMatch `json:"repair_request_entries"`
	HasBloom             *bool         `json:"has_bloom"`
	BloomContains        []string      `json:"bloom_contains"`
	BloomLacks           []string      `json:"bloom_lacks"`
	BloomCapacity        *int          `json:"bloom_capacity"`
	BloomErrorRate       *float64      `json:"bloom_error_rate"`
}

type eventMatch struct {
	Type            string        `json:"type"`
	ChannelID       *string       `json:"channel_id"`
	MessageID       *string       `json:"message_id"`
	SenderID        *string       `json:"sender_id"`
	Content         *string       `json:"content"`
	Lamport         *numMatch     `json:"lamport"`
	Count           *uint32       `json:"count"`
	Attempt         *uint32       `json:"attempt"`
	ResendAttempts  *uint32       `json:"resend_attempts"`
	Missing         *[]string     `json:"missing"`
	MissingEntries  *[]entryMatch `json:"missing_entries"`
	Delivered       *bool         `json:"delivered"`
	Operation       *string       `json:"operation"`
	DetailContains  *string       `json:"detail_contains"`
	WireBytes       *string       `json:"wire_bytes"`
	WireMessage     *messageMatch `json:"wire_message"`
	SaveWireBytesAs string        `json:"save_wire_bytes_as"`
}

type stateMatch struct {
	Exists                *bool              `json:"exists"`
	Lamport               *numMatch          `json:"lamport"`
	SaveLamportAs         string             `json:"save_lamport_as"`
	Log                   *[]string          `json:"log"`
	LogEntries            *[]logEntryMatch   `json:"log_entries"`
	LogContains           []string           `json:"log_contains"`
	LogLacks              []string           `json:"log_lacks"`
	Outgoing              *[]string          `json:"outgoing"`
	OutgoingEntries       *[]outgoingMatch   `json:"outgoing_entries"`
	Incoming              *[]string          `json:"incoming"`
	IncomingEntries       *[]incomingMatch   `json:"incoming_entries"`
	OutgoingRepair        *[]string          `json:"outgoing_repair"`
	OutgoingRepairEntries *[]repairMatch     `json:"outgoing_repair_entries"`
	IncomingRepair        *[]string          `json:"incoming_repair"`
	IncomingRepairEntries *[]repairMatch     `json:"incoming_repair_entries"`
	RetrievalHints        *map[string]string `json:"retrieval_hints"`
	SaveAs                string             `json:"save_as"`
	Equals                string             `json:"equals"`
}

type logEntryMatch struct {
	MessageID string    `json:"message_id"`
	SenderID  *string   `json:"sender_id"`
	Content   *string   `json:"content"`
	Lamport   *numMatch `json:"lamport"`
}

type outgoingMatch struct {
	MessageID          string    `json:"message_id"`
	ResendAttempts     *uint32   `json:"resend_attempts"`
	PossibleAckSenders *[]string `json:"possible_ack_senders"`
}

type incomingMatch struct {
	MessageID string    `json:"message_id"`
	Missing   *[]string `json:"missing"`
}

type repairMatch struct {
	MessageID string  `json:"message_id"`
	SenderID  *string `json:"sender_id"`
	Attempts  *uint32 `json:"attempts"`
	Due       *bool   `json:"due"`
}

// numMatch is an integer expectation: a number (equal), a string (equal to a saved
// number) or an object of comparisons, each against a number or a saved number's name.
type numMatch struct {
	cmp map[string]numRef
}

type numRef struct {
	lit   uint64
	saved string
}

func (n *numMatch) UnmarshalJSON(b []byte) error {
	n.cmp = map[string]numRef{}
	if len(b) > 0 && b[0] == '{' {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		for k, v := range raw {
			switch k {
			case "eq", "ne", "gt", "ge", "lt", "le":
			default:
				return fmt.Errorf("number matcher: unknown comparison %q", k)
			}
			r, err := parseNumRef(v)
			if err != nil {
				return err
			}
			n.cmp[k] = r
		}
		return nil
	}
	r, err := parseNumRef(b)
	if err != nil {
		return err
	}
	n.cmp["eq"] = r
	return nil
}

func parseNumRef(b []byte) (numRef, error) {
	if len(b) > 0 && b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		return numRef{saved: s}, err
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return numRef{}, fmt.Errorf("number matcher: %s is not a non-negative integer", b)
	}
	return numRef{lit: v}, nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// loadScenarios decodes every scenario file strictly.
func loadScenarios(t *testing.T) (names []string, byName map[string]*scenario) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(conformanceDir, "scenarios", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no scenario files under %s/scenarios", conformanceDir)
	}
	byName = map[string]*scenario{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var sc scenario
		if err := strictUnmarshal(data, &sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		base := strings.TrimSuffix(filepath.Base(f), ".json")
		if sc.Name != base {
			t.Fatalf("%s: name %q differs from the file name", f, sc.Name)
		}
		names = append(names, base)
		byName[base] = &sc
	}
	sort.Strings(names)
	return names, byName
}

func TestConformance(t *testing.T) {
	names, byName := loadScenarios(t)
	for _, name := range names {
		sc := byName[name]
		t.Run(name, func(t *testing.T) {
			r := newRunner(t, sc)
			defer r.closeAll()
			for i := range sc.Steps {
				r.run(i, &sc.Steps[i])
				if t.Failed() { // later steps build on this one
					t.FailNow()
				}
			}
		})
	}
}

// --- the runner -------------------------------------------------------------------------

type participant struct {
	name        string
	id          string
	cfg         *pb.Config
	persistence string
	mp          *sdskit.MemoryPersistence
	hintPrefix  *string
	m           *sdskit.Manager

	mu     sync.Mutex
	events []*pb.Event
}

func (p *participant) record(ev *pb.Event) {
	p.mu.Lock()
	p.events = append(p.events, proto.CloneOf(ev))
	p.mu.Unlock()
}

func (p *participant) eventCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

func (p *participant) eventsSince(n int) []*pb.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events[n:])
}

type runner struct {
	t     *testing.T
	sc    *scenario
	ctx   context.Context
	clk   *clock.Manual
	ps    map[string]*participant
	bytes map[string][]byte
	nums  map[string]uint64
	snaps map[string]*pb.ChannelSnapshot

	stepDesc string
	// collect, when set, receives failures instead of the test (see collecting).
	collect *[]string
}

func newRunner(t *testing.T, sc *scenario) *runner {
	start := int64(defaultStartUnixMs)
	if sc.StartUnixMs != nil {
		start = *sc.StartUnixMs
	}
	return &runner{
		t:     t,
		sc:    sc,
		ctx:   context.Background(),
		clk:   clock.NewManual(time.UnixMilli(start)),
		ps:    map[string]*participant{},
		bytes: map[string][]byte{},
		nums:  map[string]uint64{},
		snaps: map[string]*pb.ChannelSnapshot{},
	}
}

func (r *runner) closeAll() {
	for _, p := range r.ps {
		if p.m != nil {
			_ = p.m.Close()
		}
	}
}

func (r *runner) fatalf(format string, args ...any) {
	r.t.Helper()
	if r.collect != nil {
		*r.collect = append(*r.collect, fmt.Sprintf(format, args...))
		panic(collectAbort{})
	}
	r.t.Fatalf("%s: %s", r.stepDesc, fmt.Sprintf(format, args...))
}

func (r *runner) errorf(format string, args ...any) {
	r.t.Helper()
	if r.collect != nil {
		*r.collect = append(*r.collect, fmt.Sprintf(format, args...))
		return
	}
	r.t.Errorf("%s: %s", r.stepDesc, fmt.Sprintf(format, args...))
}

// collectAbort unwinds a collecting check after a fatal mismatch.
type collectAbort struct{}

// collecting runs check on a copy of the runner that collects failures instead of
// reporting them, and returns them: event matching tries a matcher against several
// events without failing the test on the ones that do not match.
func (r *runner) collecting(check func(sub *runner)) (errs []string) {
	sub := *r
	sub.collect = &errs
	func() {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(collectAbort); !ok {
					panic(v)
				}
			}
		}()
		check(&sub)
	}()
	return errs
}

func (r *runner) channel(s *step) string {
	if s.Channel != nil {
		return *s.Channel
	}
	if r.sc.Channel != "" {
		return r.sc.Channel
	}
	return defaultChannel
}

func (r *runner) participant(name string) *participant {
	r.t.Helper()
	p := r.ps[name]
	if p == nil {
		r.fatalf("unknown participant %q", name)
	}
	return p
}

func (r *runner) start(p *participant) error {
	opts := []sdskit.Option{
		sdskit.WithConfig(proto.CloneOf(p.cfg)),
		sdskit.WithClock(r.clk),
		sdskit.WithEventFunc(p.record),
		sdskit.WithLogger(slog.New(slog.DiscardHandler)),
	}
	if p.persistence == "memory" {
		opts = append(opts, sdskit.WithPersistence(p.mp))
	}
	if p.hintPrefix != nil {
		prefix := *p.hintPrefix
		opts = append(opts, sdskit.WithRetrievalHints(func(_ context.Context, _, messageID string) ([]byte, error) {
			return []byte(prefix + messageID), nil
		}))
	}
	m, err := sdskit.New(r.ctx, p.id, opts...)
	if err != nil {
		return err
	}
	p.m = m
	return nil
}

// stepResult is what a step produced, for its expectations.
type stepResult struct {
	err      error
	received *sdskit.Received
	out      []byte // returned or delivered bytes
}

func (r *runner) run(i int, s *step) {
	r.t.Helper()
	r.stepDesc = fmt.Sprintf("step %d (%s", i, s.Op)
	if s.Participant != "" {
		r.stepDesc += " " + s.Participant
	}
	r.stepDesc += ")"
	if s.Comment != "" {
		r.stepDesc += " «" + s.Comment + "»"
	}

	var p *participant
	if s.Participant != "" && s.Op != "create" {
		p = r.participant(s.Participant)
	}
	evBefore := 0
	var callsBefore map[string]int
	if p != nil {
		evBefore = p.eventCount()
		if p.mp != nil {
			callsBefore = map[string]int{}
			for _, op := range sdskit.PersistenceMethods {
				callsBefore[op] = p.mp.Calls(op)
			}
		}
	}

	res := r.exec(s, p)
	if s.Op == "create" {
		p = r.ps[s.Participant]
	}

	e := s.Expect
	if e == nil {
		e = &expect{}
	}
	r.checkError(e, res.err)
	if res.out != nil && s.SaveAs != "" && (res.err == nil || s.Op == "deliver") {
		r.bytes[s.SaveAs] = res.out
	}
	if e.Result != nil {
		if res.received == nil {
			r.fatalf("expect.result needs a successful deliver step")
		}
		r.checkResult(e.Result, res.received)
	}
	if e.Message != nil {
		if res.out == nil {
			r.fatalf("expect.message needs bytes (a successful wrap, wrap_ephemeral or build_sync, or check with bytes)")
		}
		r.checkMessage("message", e.Message, res.out)
	}
	if e.Events != nil || len(e.EventsExcluded) > 0 {
		if p == nil {
			r.fatalf("event expectations need a participant step")
		}
		got := p.eventsSince(evBefore)
		r.checkEvents(e, got)
	}
	if e.PersistenceCalls != nil {
		if p == nil || p.mp == nil {
			r.fatalf("expect.persistence_calls needs a participant with memory persistence")
		}
		for _, op := range sortedKeys(e.PersistenceCalls) {
			want := e.PersistenceCalls[op]
			if !slices.Contains(sdskit.PersistenceMethods, op) {
				r.fatalf("expect.persistence_calls: unknown method %q", op)
			}
			if got := p.mp.Calls(op) - callsBefore[op]; got != want {
				r.errorf("persistence calls of %s = %d, want %d", op, got, want)
			}
		}
	}
	if e.Channels != nil {
		if p == nil || p.m == nil {
			r.fatalf("expect.channels needs a participant")
		}
		got, err := p.m.Channels(r.ctx)
		if err != nil {
			r.fatalf("Channels: %v", err)
		}
		if !slices.Equal(nonNil(got), nonNil(*e.Channels)) {
			r.errorf("channels = %q, want %q", got, *e.Channels)
		}
	}
	if e.PersistedChans != nil {
		if p == nil || p.mp == nil {
			r.fatalf("expect.persisted_channels needs a participant with memory persistence")
		}
		if got := p.mp.Channels(); !slices.Equal(nonNil(got), nonNil(*e.PersistedChans)) {
			r.errorf("persisted channels = %q, want %q", got, *e.PersistedChans)
		}
	}
	if e.State != nil {
		if p == nil || p.m == nil {
			r.fatalf("expect.state needs a participant")
		}
		snap, err := p.m.Snapshot(r.ctx, r.channel(s))
		var pe *sdskit.Error
		if errors.As(err, &pe) && pe.GetCode() == pb.ErrorCode_ERROR_CODE_NOT_FOUND {
			snap = nil
		} else if err != nil {
			r.fatalf("Snapshot(%s): %v", r.channel(s), err)
		}
		r.checkState("state", e.State, snap)
	}
	if e.Persisted != nil {
		if p == nil || p.mp == nil {
			r.fatalf("expect.persisted needs a participant with memory persistence")
		}
		var snap *pb.ChannelSnapshot
		if slices.Contains(p.mp.Channels(), r.channel(s)) {
			snap = p.mp.Snapshot(r.channel(s))
		}
		r.checkState("persisted", e.Persisted, snap)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (r *runner) content(s *step) []byte {
	switch {
	case s.Content != nil:
		return []byte(*s.Content)
	case s.ContentBase64 != nil:
		return r.b64(*s.ContentBase64)
	case s.ContentSize != nil:
		return bytes.Repeat([]byte{'x'}, *s.ContentSize)
	}
	r.fatalf("needs content, content_base64 or content_size")
	return nil
}

func (r *runner) b64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		r.fatalf("bad base64 %q: %v", s, err)
	}
	return b
}

func (r *runner) saved(name string) []byte {
	b, ok := r.bytes[name]
	if !ok {
		r.fatalf("no bytes saved as %q", name)
	}
	return b
}

func (r *runner) exec(s *step, p *participant) stepResult {
	r.t.Helper()
	ctx := r.ctx
	switch s.Op {
	case "create":
		if _, dup := r.ps[s.Participant]; dup {
			r.fatalf("participant %q already exists", s.Participant)
		}
		np := &participant{name: s.Participant, id: s.Participant, cfg: &pb.Config{}, persistence: "none", hintPrefix: s.RetrievalHintPrefix}
		if s.ParticipantID != nil {
			np.id = *s.ParticipantID
		}
		if len(s.Config) > 0 {
			if err := protojson.Unmarshal(s.Config, np.cfg); err != nil {
				r.fatalf("config is not protojson of sdskit.v1.Config: %v", err)
			}
		}
		if s.Persistence != "" {
			np.persistence = s.Persistence
		}
		switch np.persistence {
		case "none":
		case "memory":
			np.mp = sdskit.NewMemoryPersistence()
		default:
			r.fatalf("unknown persistence %q", np.persistence)
		}
		if err := r.start(np); err != nil {
			return stepResult{err: err}
		}
		r.ps[s.Participant] = np
		return stepResult{}
	case "restart":
		if err := p.m.Close(); err != nil {
			r.fatalf("Close before restart: %v", err)
		}
		if len(s.Config) > 0 {
			p.cfg = &pb.Config{}
			if err := protojson.Unmarshal(s.Config, p.cfg); err != nil {
				r.fatalf("config is not protojson of sdskit.v1.Config: %v", err)
			}
		}
		return stepResult{err: r.start(p)}
	case "close":
		return stepResult{err: p.m.Close()}
	case "wrap":
		b, err := p.m.Wrap(ctx, r.channel(s), deref(s.MessageID), r.content(s))
		return stepResult{err: err, out: b}
	case "wrap_ephemeral":
		b, err := p.m.WrapEphemeral(ctx, r.channel(s), deref(s.MessageID), r.content(s))
		return stepResult{err: err, out: b}
	case "build_sync":
		b, err := p.m.BuildSyncMessage(ctx, r.channel(s))
		return stepResult{err: err, out: b}
	case "deliver":
		var data []byte
		switch {
		case s.Bytes != "":
			data = r.saved(s.Bytes)
		case s.BytesBase64 != nil:
			data = r.b64(*s.BytesBase64)
		case s.Message != nil:
			data = r.encodeSpec(s.Message)
		default:
			r.fatalf("deliver needs bytes, bytes_base64 or message")
		}
		var hint []byte
		if s.RetrievalHint != nil {
			hint = []byte(*s.RetrievalHint)
		}
		got, err := p.m.Unwrap(ctx, data, hint)
		return stepResult{err: err, received: got, out: data}
	case "mark_dependencies_met":
		return stepResult{err: p.m.MarkDependenciesMet(ctx, r.channel(s), s.MessageIDs...)}
	case "ensure_channel":
		return stepResult{err: p.m.EnsureChannel(ctx, r.channel(s))}
	case "remove_channel":
		return stepResult{err: p.m.RemoveChannel(ctx, r.channel(s))}
	case "reset":
		return stepResult{err: p.m.Reset(ctx)}
	case "run_sweeps":
		return stepResult{err: p.m.RunSweeps(ctx)}
	case "advance_clock":
		if s.Ms == nil || *s.Ms < 0 {
			r.fatalf("advance_clock needs ms ≥ 0")
		}
		r.clk.Advance(time.Duration(*s.Ms) * time.Millisecond)
		return stepResult{}
	case "fail_persistence":
		if p.mp == nil {
			r.fatalf("fail_persistence needs memory persistence")
		}
		if s.Nth != nil {
			p.mp.FailNth(s.Operation, *s.Nth)
		} else {
			p.mp.FailOp(s.Operation)
		}
		return stepResult{}
	case "heal_persistence":
		if p.mp == nil {
			r.fatalf("heal_persistence needs memory persistence")
		}
		if s.Operation != "" {
			p.mp.Heal(s.Operation)
		} else {
			p.mp.Heal()
		}
		return stepResult{}
	case "check":
		var out []byte
		if s.Bytes != "" {
			out = r.saved(s.Bytes)
		}
		return stepResult{out: out}
	}
	r.fatalf("unknown op %q", s.Op)
	return stepResult{}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// encodeSpec encodes a hand-described message with the spec field numbers (plain
// deterministic protobuf of sdskit.v1.SdsMessage).
func (r *runner) encodeSpec(ms *messageSpec) []byte {
	msg := &pb.SdsMessage{SenderId: ms.SenderID, MessageId: ms.MessageID, ChannelId: r.sc.Channel}
	if msg.ChannelId == "" {
		msg.ChannelId = defaultChannel
	}
	if ms.ChannelID != nil {
		msg.ChannelId = *ms.ChannelID
	}
	if ms.Lamport != nil {
		msg.LamportTimestamp = proto.Uint64(*ms.Lamport)
	}
	for _, e := range ms.CausalHistory {
		msg.CausalHistory = append(msg.CausalHistory, r.entry(e))
	}
	for _, e := range ms.RepairRequest {
		msg.RepairRequest = append(msg.RepairRequest, r.entry(e))
	}
	switch {
	case ms.BloomOf != nil:
		f := r.newFilter(ms.BloomCapacity, ms.BloomErrorRate)
		for _, id := range *ms.BloomOf {
			r.asciiID(id)
			f.Add(id)
		}
		msg.BloomFilter = profile.Spec.EncodeBloom(f)
	case ms.BloomBase64 != nil:
		msg.BloomFilter = r.b64(*ms.BloomBase64)
	}
	switch {
	case ms.Content != nil:
		msg.Content = []byte(*ms.Content)
	case ms.ContentBase64 != nil:
		msg.Content = r.b64(*ms.ContentBase64)
	case ms.ContentSize != nil:
		msg.Content = bytes.Repeat([]byte{'x'}, *ms.ContentSize)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		r.fatalf("encode message: %v", err)
	}
	return b
}

func (r *runner) entry(e entrySpec) *pb.HistoryEntry {
	h := &pb.HistoryEntry{MessageId: e.MessageID}
	if e.SenderID != nil {
		h.SenderId = proto.String(*e.SenderID)
	}
	switch {
	case e.RetrievalHint != nil:
		h.RetrievalHint = []byte(*e.RetrievalHint)
	case e.RetrievalHintBase64 != nil:
		h.RetrievalHint = r.b64(*e.RetrievalHintBase64)
	}
	return h
}

// asciiID insists on ASCII ids in bloom filters: for them the spec profile's hash is plain
// MurmurHash3 of the bytes, which every runner can reproduce (see the README).
func (r *runner) asciiID(id string) {
	for i := range len(id) {
		if id[i] >= 0x80 {
			r.fatalf("bloom filter id %q is not ASCII", id)
		}
	}
}

func (r *runner) bloomParams(capacity *int, rate *float64) (k, m uint) {
	c, p := 10000, 0.001
	if capacity != nil {
		c = *capacity
	}
	if rate != nil {
		p = *rate
	}
	k, m, err := bloom.Size(c, p)
	if err != nil {
		r.fatalf("bloom sizing: %v", err)
	}
	return k, m
}

func (r *runner) newFilter(capacity *int, rate *float64) *bloom.Filter {
	k, m := r.bloomParams(capacity, rate)
	f, err := bloom.New(k, m, profile.Spec.Hash)
	if err != nil {
		r.fatalf("bloom: %v", err)
	}
	return f
}

// --- expectations -----------------------------------------------------------------------

func errorCodeName(c pb.ErrorCode) string { return strings.TrimPrefix(c.String(), "ERROR_CODE_") }

func (r *runner) checkError(e *expect, err error) {
	r.t.Helper()
	if e.Error == nil {
		if err != nil {
			r.fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		r.fatalf("succeeded, want error %s", *e.Error)
	}
	var pe *sdskit.Error
	if !errors.As(err, &pe) {
		r.fatalf("error %v (%T) is not a typed *sdskit.Error", err, err)
	}
	if got := errorCodeName(pe.GetCode()); got != *e.Error {
		r.fatalf("error code %s (%v), want %s", got, err, *e.Error)
	}
	if e.ErrorContains != nil && !strings.Contains(pe.Error(), *e.ErrorContains) {
		r.errorf("error %q does not contain %q", pe.Error(), *e.ErrorContains)
	}
}

func (r *runner) num(n *numMatch, got uint64, what string) {
	r.t.Helper()
	for _, op := range sortedKeys(n.cmp) {
		ref := n.cmp[op]
		want := ref.lit
		if ref.saved != "" {
			v, ok := r.nums[ref.saved]
			if !ok {
				r.fatalf("%s: no number saved as %q", what, ref.saved)
			}
			want = v
		}
		ok := false
		switch op {
		case "eq":
			ok = got == want
		case "ne":
			ok = got != want
		case "gt":
			ok = got > want
		case "ge":
			ok = got >= want
		case "lt":
			ok = got < want
		case "le":
			ok = got <= want
		}
		if !ok {
			r.errorf("%s = %d, want %s %d", what, got, op, want)
		}
	}
}

func (r *runner) str(want *string, got, what string) {
	r.t.Helper()
	if want != nil && *want != got {
		r.errorf("%s = %q, want %q", what, got, *want)
	}
}

func (r *runner) ids(want *[]string, got []string, what string) {
	r.t.Helper()
	if want != nil && !slices.Equal(nonNil(got), nonNil(*want)) {
		r.errorf("%s = %q, want %q", what, got, *want)
	}
}

func entryIDs(es []*pb.HistoryEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.GetMessageId())
	}
	return out
}

func (r *runner) entries(want *[]entryMatch, got []*pb.HistoryEntry, what string) {
	r.t.Helper()
	if want == nil {
		return
	}
	if len(got) != len(*want) {
		r.errorf("%s = %q, want %d entries", what, entryIDs(got), len(*want))
		return
	}
	for i, w := range *want {
		g := got[i]
		where := fmt.Sprintf("%s[%d]", what, i)
		r.str(&w.MessageID, g.GetMessageId(), where+".message_id")
		r.str(w.SenderID, g.GetSenderId(), where+".sender_id")
		r.str(w.RetrievalHint, string(g.GetRetrievalHint()), where+".retrieval_hint")
	}
}

func kindName(k pb.MessageKind) string { return strings.TrimPrefix(k.String(), "MESSAGE_KIND_") }

func (r *runner) checkResult(w *resultMatch, got *sdskit.Received) {
	r.t.Helper()
	r.str(w.Kind, kindName(got.GetKind()), "result.kind")
	if w.Delivered != nil && *w.Delivered != got.GetDelivered() {
		r.errorf("result.delivered = %v, want %v", got.GetDelivered(), *w.Delivered)
	}
	r.str(w.MessageID, got.GetMessageId(), "result.message_id")
	r.str(w.ChannelID, got.GetChannelId(), "result.channel_id")
	r.str(w.SenderID, got.GetSenderId(), "result.sender_id")
	r.str(w.Content, string(got.GetContent()), "result.content")
	if w.Lamport != nil {
		r.num(w.Lamport, got.GetLamportTimestamp(), "result.lamport")
	}
	r.ids(w.Missing, entryIDs(got.GetMissing()), "result.missing")
	r.entries(w.MissingEntries, got.GetMissing(), "result.missing_entries")
}

// wireKind classifies a decoded message by field presence, as the protocol does.
func wireKind(m *pb.SdsMessage) string {
	switch {
	case m.LamportTimestamp == nil:
		return "EPHEMERAL"
	case len(m.GetContent()) > 0:
		return "CONTENT"
	}
	return "SYNC"
}

func (r *runner) checkMessage(what string, w *messageMatch, data []byte) {
	r.t.Helper()
	var m pb.SdsMessage
	if err := proto.Unmarshal(data, &m); err != nil {
		r.fatalf("%s: the bytes do not decode as an SdsMessage: %v", what, err)
	}
	r.str(w.Kind, wireKind(&m), what+".kind")
	r.str(w.MessageID, m.GetMessageId(), what+".message_id")
	r.str(w.SenderID, m.GetSenderId(), what+".sender_id")
	r.str(w.ChannelID, m.GetChannelId(), what+".channel_id")
	if w.HasLamport != nil && *w.HasLamport != (m.LamportTimestamp != nil) {
		r.errorf("%s has lamport = %v, want %v", what, m.LamportTimestamp != nil, *w.HasLamport)
	}
	if w.Lamport != nil {
		if m.LamportTimestamp == nil {
			r.errorf("%s has no lamport timestamp", what)
		} else {
			r.num(w.Lamport, m.GetLamportTimestamp(), what+".lamport")
		}
	}
	if w.SaveLamportAs != "" {
		r.nums[w.SaveLamportAs] = m.GetLamportTimestamp()
	}
	r.str(w.Content, string(m.GetContent()), what+".content")
	r.ids(w.CausalHistory, entryIDs(m.GetCausalHistory()), what+".causal_history")
	r.entries(w.CausalHistoryEntries, m.GetCausalHistory(), what+".causal_history_entries")
	r.ids(w.RepairRequest, entryIDs(m.GetRepairRequest()), what+".repair_request")
	r.entries(w.RepairRequestEntries, m.GetRepairRequest(), what+".repair_request_entries")
	if w.HasBloom != nil && *w.HasBloom != (len(m.GetBloomFilter()) > 0) {
		r.errorf("%s has bloom filter = %v, want %v", what, len(m.GetBloomFilter()) > 0, *w.HasBloom)
	}
	if len(w.BloomContains) > 0 || len(w.BloomLacks) > 0 {
		k, mm := r.bloomParams(w.BloomCapacity, w.BloomErrorRate)
		f, err := profile.Spec.DecodeBloom(m.GetBloomFilter(), k, mm)
		if err != nil {
			r.fatalf("%s: bloom filter (%d bytes) does not decode: %v", what, len(m.GetBloomFilter()), err)
		}
		for _, id := range append(slices.Clone(w.BloomContains), w.BloomLacks...) {
			r.asciiID(id)
		}
		for _, id := range w.BloomContains {
			if !f.Test(id) {
				r.errorf("%s: bloom filter lacks %q", what, id)
			}
		}
		for _, id := range w.BloomLacks {
			if f.Test(id) {
				r.errorf("%s: bloom filter contains %q", what, id)
			}
		}
	}
}

// eventType names an event by its field of the Event oneof (e.g. "message_ready").
func eventType(ev *pb.Event) string {
	msg := ev.ProtoReflect()
	fd := msg.WhichOneof(msg.Descriptor().Oneofs().ByName("event"))
	if fd == nil {
		return ""
	}
	return string(fd.Name())
}

func describeEvents(evs []*pb.Event) string {
	var parts []string
	for _, ev := range evs {
		parts = append(parts, eventType(ev)+"("+eventMessageID(ev)+")")
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func eventMessageID(ev *pb.Event) string {
	switch e := ev.GetEvent().(type) {
	case *pb.Event_MessageReady:
		return e.MessageReady.GetMessageId()
	case *pb.Event_MessageAcknowledged:
		return e.MessageAcknowledged.GetMessageId()
	case *pb.Event_MessagePossiblyAcknowledged:
		return e.MessagePossiblyAcknowledged.GetMessageId()
	case *pb.Event_MessageUnacknowledged:
		return e.MessageUnacknowledged.GetMessageId()
	case *pb.Event_ResendRequested:
		return e.ResendRequested.GetMessageId()
	case *pb.Event_MissingDependencies:
		return e.MissingDependencies.GetMessageId()
	case *pb.Event_MessageLost:
		return e.MessageLost.GetMessageId()
	case *pb.Event_RepairReady:
		return e.RepairReady.GetMessageId()
	}
	return ""
}

// eventFields lists the matcher fields that apply to each event type.
var eventFields = map[string][]string{
	"message_ready":                 {"channel_id", "message_id", "sender_id", "content", "lamport"},
	"message_acknowledged":          {"channel_id", "message_id"},
	"message_possibly_acknowledged": {"channel_id", "message_id", "count"},
	"message_unacknowledged":        {"channel_id", "message_id", "resend_attempts"},
	"resend_requested":              {"channel_id", "message_id", "attempt", "wire_bytes", "wire_message", "save_wire_bytes_as"},
	"missing_dependencies":          {"channel_id", "message_id", "missing", "missing_entries"},
	"message_lost":                  {"channel_id", "message_id", "missing", "missing_entries", "delivered"},
	"sync_due":                      {"channel_id"},
	"repair_ready":                  {"channel_id", "message_id", "wire_bytes", "wire_message", "save_wire_bytes_as"},
	"persistence_failed":            {"channel_id", "operation", "detail_contains"},
}

// usedFields returns the matcher fields set in w.
func (w *eventMatch) usedFields() []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(w.ChannelID != nil, "channel_id")
	add(w.MessageID != nil, "message_id")
	add(w.SenderID != nil, "sender_id")
	add(w.Content != nil, "content")
	add(w.Lamport != nil, "lamport")
	add(w.Count != nil, "count")
	add(w.Attempt != nil, "attempt")
	add(w.ResendAttempts != nil, "resend_attempts")
	add(w.Missing != nil, "missing")
	add(w.MissingEntries != nil, "missing_entries")
	add(w.Delivered != nil, "delivered")
	add(w.Operation != nil, "operation")
	add(w.DetailContains != nil, "detail_contains")
	add(w.WireBytes != nil, "wire_bytes")
	add(w.WireMessage != nil, "wire_message")
	add(w.SaveWireBytesAs != "", "save_wire_bytes_as")
	return out
}

func (r *runner) validateEventMatch(w *eventMatch) {
	r.t.Helper()
	allowed, ok := eventFields[w.Type]
	if !ok {
		r.fatalf("unknown event type %q", w.Type)
	}
	for _, f := range w.usedFields() {
		if !slices.Contains(allowed, f) {
			r.fatalf("event matcher field %q does not apply to %s", f, w.Type)
		}
	}
}

// mismatch returns why ev does not match w ("" when it does). It has no side effects;
// apply runs the saves of a matched event.
func (r *runner) mismatch(w *eventMatch, ev *pb.Event) string {
	if eventType(ev) != w.Type {
		return fmt.Sprintf("type %s, want %s", eventType(ev), w.Type)
	}
	var errs []string
	str := func(want *string, got, name string) {
		if want != nil && *want != got {
			errs = append(errs, fmt.Sprintf("%s %q, want %q", name, got, *want))
		}
	}
	u32 := func(want *uint32, got uint32, name string) {
		if want != nil && *want != got {
			errs = append(errs, fmt.Sprintf("%s %d, want %d", name, got, *want))
		}
	}
	missing := func(got []*pb.HistoryEntry) {
		if w.Missing != nil && !slices.Equal(nonNil(entryIDs(got)), nonNil(*w.Missing)) {
			errs = append(errs, fmt.Sprintf("missing %q, want %q", entryIDs(got), *w.Missing))
		}
		if w.MissingEntries != nil {
			if len(got) != len(*w.MissingEntries) {
				errs = append(errs, fmt.Sprintf("missing %q, want %d entries", entryIDs(got), len(*w.MissingEntries)))
				return
			}
			for i, m := range *w.MissingEntries {
				str(&m.MessageID, got[i].GetMessageId(), fmt.Sprintf("missing[%d].message_id", i))
				str(m.SenderID, got[i].GetSenderId(), fmt.Sprintf("missing[%d].sender_id", i))
				str(m.RetrievalHint, string(got[i].GetRetrievalHint()), fmt.Sprintf("missing[%d].retrieval_hint", i))
			}
		}
	}
	wire := func(got []byte) {
		if w.WireBytes != nil {
			want, ok := r.bytes[*w.WireBytes]
			if !ok {
				errs = append(errs, fmt.Sprintf("no bytes saved as %q", *w.WireBytes))
			} else if !bytes.Equal(got, want) {
				errs = append(errs, fmt.Sprintf("wire bytes differ from those saved as %q", *w.WireBytes))
			}
		}
		if w.WireMessage != nil {
			errs = append(errs, r.collecting(func(sub *runner) { sub.checkMessage("wire_message", w.WireMessage, got) })...)
		}
	}
	switch e := ev.GetEvent().(type) {
	case *pb.Event_MessageReady:
		x := e.MessageReady
		str(w.ChannelID, x.GetChannelId(), "channel_id")
		str(w.MessageID, x.GetMessageId(), "message_id")
		str(w.SenderID, x.GetSenderId(), "sender_id")
		str(w.Content, string(x.GetContent()), "content")
		if w.Lamport != nil {
			errs = append(errs, r.collecting(func(sub *runner) { sub.num(w.Lamport, x.GetLamportTimestamp(), "lamport") })...)
		}
	case *pb.Event_MessageAcknowledged:
		str(w.ChannelID, e.MessageAcknowledged.GetChannelId(), "channel_id")
		str(w.MessageID, e.MessageAcknowledged.GetMessageId(), "message_id")
	case *pb.Event_MessagePossiblyAcknowledged:
		x := e.MessagePossiblyAcknowledged
		str(w.ChannelID, x.GetChannelId(), "channel_id")
		str(w.MessageID, x.GetMessageId(), "message_id")
		u32(w.Count, x.GetCount(), "count")
	case *pb.Event_MessageUnacknowledged:
		x := e.MessageUnacknowledged
		str(w.ChannelID, x.GetChannelId(), "channel_id")
		str(w.MessageID, x.GetMessageId(), "message_id")
		u32(w.ResendAttempts, x.GetResendAttempts(), "resend_attempts")
	case *pb.Event_ResendRequested:
		x := e.ResendRequested
		str(w.ChannelID, x.GetChannelId(), "channel_id")
		str(w.MessageID, x.GetMessageId(), "message_id")
		u32(w.Attempt, x.GetAttempt(), "attempt")
		wire(x.GetWireBytes())
	case *pb.Event_MissingDependencies:
		x := e.MissingDependencies
		str(w.ChannelID, x.GetChannelId(), "channel_id")
		str(w.MessageID, x.GetMessageId(), "message_id")
		missing(x.GetMissing())
	case *pb.Event_MessageLost:
		x := e.MessageLost
		str(w.ChannelID, x.GetChannelId(), "channel_id")
		str(w.MessageID, x.GetMessageId(), "message_id")
		missing(x.GetMissing())
		if w.Delivered != nil && *w.Delivered != x.GetDelivered() {
			errs = append(errs, fmt.Sprintf("delivered %v, want %v", x.GetDelivered(), *w.Delivered))
		}
	case *pb.Event_SyncDue:
		str(w.ChannelID, e.SyncDue.GetChannelId(), "channel_id")
	case *pb.Event_RepairReady:
		x := e.RepairReady
		str(w.ChannelID, x.GetChannelId(), "channel_id")
		str(w.MessageID, x.GetMessageId(), "message_id")
		wire(x.GetWireBytes())
	case *pb.Event_PersistenceFailed:
		x := e.PersistenceFailed
		str(w.ChannelID, x.GetChannelId(), "channel_id")
		str(w.Operation, x.GetOperation(), "operation")
		if w.DetailContains != nil && !strings.Contains(x.GetDetail(), *w.DetailContains) {
			errs = append(errs, fmt.Sprintf("detail %q does not contain %q", x.GetDetail(), *w.DetailContains))
		}
	}
	return strings.Join(errs, "; ")
}

func (r *runner) applySaves(w *eventMatch, ev *pb.Event) {
	if w.SaveWireBytesAs == "" {
		return
	}
	switch e := ev.GetEvent().(type) {
	case *pb.Event_ResendRequested:
		r.bytes[w.SaveWireBytesAs] = e.ResendRequested.GetWireBytes()
	case *pb.Event_RepairReady:
		r.bytes[w.SaveWireBytesAs] = e.RepairReady.GetWireBytes()
	}
}

func (r *runner) checkEvents(e *expect, got []*pb.Event) {
	r.t.Helper()
	mode := e.EventsMode
	if mode == "" {
		mode = "exact"
	}
	for _, w := range e.EventsExcluded {
		r.validateEventMatch(&w)
		for _, ev := range got {
			if r.mismatch(&w, ev) == "" {
				r.errorf("excluded event %s(%s) was emitted; events %s", w.Type, eventMessageID(ev), describeEvents(got))
			}
		}
	}
	if e.Events == nil {
		return
	}
	want := *e.Events
	for i := range want {
		r.validateEventMatch(&want[i])
	}
	switch mode {
	case "exact":
		if len(got) != len(want) {
			r.errorf("events %s, want %d events", describeEvents(got), len(want))
			return
		}
		for i := range want {
			if msg := r.mismatch(&want[i], got[i]); msg != "" {
				r.errorf("event %d: %s; events %s", i, msg, describeEvents(got))
				continue
			}
			r.applySaves(&want[i], got[i])
		}
	case "contains":
		j := 0
		for i := range want {
			found := false
			for ; j < len(got); j++ {
				if r.mismatch(&want[i], got[j]) == "" {
					r.applySaves(&want[i], got[j])
					found = true
					j++
					break
				}
			}
			if !found {
				r.errorf("events %s do not contain %s(%s) in order", describeEvents(got), want[i].Type, deref(want[i].MessageID))
				return
			}
		}
	default:
		r.fatalf("unknown events_mode %q", mode)
	}
}

// normalize sorts the keyed tables of a snapshot by id, so that in-memory and persisted
// snapshots compare equal when they hold the same state.
func normalize(s *pb.ChannelSnapshot) *pb.ChannelSnapshot {
	s = proto.CloneOf(s)
	slices.SortStableFunc(s.Incoming, func(a, b *pb.IncomingMessage) int {
		return strings.Compare(a.GetMessage().GetMessageId(), b.GetMessage().GetMessageId())
	})
	slices.SortStableFunc(s.OutgoingRepair, func(a, b *pb.OutgoingRepairEntry) int {
		return strings.Compare(a.GetEntry().GetMessageId(), b.GetEntry().GetMessageId())
	})
	slices.SortStableFunc(s.IncomingRepair, func(a, b *pb.IncomingRepairEntry) int {
		return strings.Compare(a.GetEntry().GetMessageId(), b.GetEntry().GetMessageId())
	})
	slices.SortStableFunc(s.RetrievalHints, func(a, b *pb.RetrievalHint) int {
		return strings.Compare(a.GetMessageId(), b.GetMessageId())
	})
	return s
}

func (r *runner) checkState(what string, w *stateMatch, snap *pb.ChannelSnapshot) {
	r.t.Helper()
	exists := snap != nil
	if w.Exists != nil && *w.Exists != exists {
		r.fatalf("%s exists = %v, want %v", what, exists, *w.Exists)
	}
	if !exists {
		if w.Exists == nil || *w.Exists {
			r.fatalf("%s: the channel has no state (not loaded / nothing stored)", what)
		}
		return
	}
	snap = normalize(snap)
	if w.Lamport != nil {
		r.num(w.Lamport, snap.GetLamportTimestamp(), what+".lamport")
	}
	if w.SaveLamportAs != "" {
		r.nums[w.SaveLamportAs] = snap.GetLamportTimestamp()
	}
	var logIDs []string
	for _, m := range snap.GetLog() {
		logIDs = append(logIDs, m.GetMessageId())
	}
	r.ids(w.Log, logIDs, what+".log")
	if w.LogEntries != nil {
		if len(*w.LogEntries) != len(snap.GetLog()) {
			r.errorf("%s.log = %q, want %d entries", what, logIDs, len(*w.LogEntries))
		} else {
			for i, le := range *w.LogEntries {
				m := snap.GetLog()[i]
				where := fmt.Sprintf("%s.log[%d]", what, i)
				r.str(&le.MessageID, m.GetMessageId(), where+".message_id")
				r.str(le.SenderID, m.GetSenderId(), where+".sender_id")
				r.str(le.Content, string(m.GetContent()), where+".content")
				if le.Lamport != nil {
					r.num(le.Lamport, m.GetLamportTimestamp(), where+".lamport")
				}
			}
		}
	}
	for _, id := range w.LogContains {
		if !slices.Contains(logIDs, id) {
			r.errorf("%s.log %q lacks %q", what, logIDs, id)
		}
	}
	for _, id := range w.LogLacks {
		if slices.Contains(logIDs, id) {
			r.errorf("%s.log %q contains %q", what, logIDs, id)
		}
	}

	var outIDs []string
	for _, u := range snap.GetOutgoing() {
		outIDs = append(outIDs, u.GetMessage().GetMessageId())
	}
	r.ids(w.Outgoing, outIDs, what+".outgoing")
	if w.OutgoingEntries != nil {
		if len(*w.OutgoingEntries) != len(snap.GetOutgoing()) {
			r.errorf("%s.outgoing = %q, want %d entries", what, outIDs, len(*w.OutgoingEntries))
		} else {
			for i, oe := range *w.OutgoingEntries {
				u := snap.GetOutgoing()[i]
				where := fmt.Sprintf("%s.outgoing[%d]", what, i)
				r.str(&oe.MessageID, u.GetMessage().GetMessageId(), where+".message_id")
				if oe.ResendAttempts != nil && *oe.ResendAttempts != u.GetResendAttempts() {
					r.errorf("%s.resend_attempts = %d, want %d", where, u.GetResendAttempts(), *oe.ResendAttempts)
				}
				r.ids(oe.PossibleAckSenders, u.GetPossibleAckSenders(), where+".possible_ack_senders")
			}
		}
	}

	var inIDs []string
	for _, im := range snap.GetIncoming() {
		inIDs = append(inIDs, im.GetMessage().GetMessageId())
	}
	r.ids(w.Incoming, inIDs, what+".incoming")
	if w.IncomingEntries != nil {
		if len(*w.IncomingEntries) != len(snap.GetIncoming()) {
			r.errorf("%s.incoming = %q, want %d entries", what, inIDs, len(*w.IncomingEntries))
		} else {
			for i, ie := range *w.IncomingEntries {
				im := snap.GetIncoming()[i]
				where := fmt.Sprintf("%s.incoming[%d]", what, i)
				r.str(&ie.MessageID, im.GetMessage().GetMessageId(), where+".message_id")
				r.ids(ie.Missing, im.GetMissingDependencies(), where+".missing")
			}
		}
	}

	now := uint64(r.clk.Now().UnixMilli())
	var orep []repairView
	for _, e := range snap.GetOutgoingRepair() {
		orep = append(orep, repairView{e.GetEntry(), e.GetAttempts(), uint64(e.GetRequestAtUnixMs()) <= now})
	}
	r.repairs(what+".outgoing_repair", w.OutgoingRepair, w.OutgoingRepairEntries, orep, true)
	var irep []repairView
	for _, e := range snap.GetIncomingRepair() {
		irep = append(irep, repairView{e.GetEntry(), 0, uint64(e.GetRespondAtUnixMs()) <= now})
	}
	r.repairs(what+".incoming_repair", w.IncomingRepair, w.IncomingRepairEntries, irep, false)

	if w.RetrievalHints != nil {
		got := map[string]string{}
		for _, h := range snap.GetRetrievalHints() {
			got[h.GetMessageId()] = string(h.GetRetrievalHint())
		}
		want := *w.RetrievalHints
		if len(got) != len(want) {
			r.errorf("%s.retrieval_hints = %q, want %q", what, got, want)
		} else {
			for k, v := range want {
				if got[k] != v {
					r.errorf("%s.retrieval_hints = %q, want %q", what, got, want)
					break
				}
			}
		}
	}
	if w.Equals != "" {
		prev, ok := r.snaps[w.Equals]
		if !ok {
			r.fatalf("%s: no state saved as %q", what, w.Equals)
		}
		if !proto.Equal(prev, snap) {
			r.errorf("%s differs from the state saved as %q:\nsaved %v\nnow   %v", what, w.Equals, prev, snap)
		}
	}
	if w.SaveAs != "" {
		r.snaps[w.SaveAs] = snap
	}
}

type repairView struct {
	e        *pb.HistoryEntry
	attempts uint32
	due      bool
}

func (r *runner) repairs(what string, ids *[]string, want *[]repairMatch, got []repairView, outgoing bool) {
	r.t.Helper()
	var gotIDs []string
	for _, g := range got {
		gotIDs = append(gotIDs, g.e.GetMessageId())
	}
	r.ids(ids, gotIDs, what)
	if want == nil {
		return
	}
	if len(*want) != len(got) {
		r.errorf("%s = %q, want %d entries", what, gotIDs, len(*want))
		return
	}
	for i, w := range *want {
		g := got[i]
		where := fmt.Sprintf("%s[%d]", what, i)
		r.str(&w.MessageID, g.e.GetMessageId(), where+".message_id")
		r.str(w.SenderID, g.e.GetSenderId(), where+".sender_id")
		if w.Attempts != nil {
			if !outgoing {
				r.fatalf("%s.attempts applies to outgoing repair entries only", where)
			}
			if *w.Attempts != g.attempts {
				r.errorf("%s.attempts = %d, want %d", where, g.attempts, *w.Attempts)
			}
		}
		if w.Due != nil && *w.Due != g.due {
			r.errorf("%s.due = %v, want %v", where, g.due, *w.Due)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
