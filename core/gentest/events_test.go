package gentest

import (
	"slices"
	"testing"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// allEvents records the message name of every event it handles.
type allEvents struct{ got []string }

func (a *allEvents) rec(m proto.Message) {
	a.got = append(a.got, string(m.ProtoReflect().Descriptor().Name()))
}
func (a *allEvents) OnMessageReady(ev *pb.MessageReady)               { a.rec(ev) }
func (a *allEvents) OnMessageAcknowledged(ev *pb.MessageAcknowledged) { a.rec(ev) }
func (a *allEvents) OnMessagePossiblyAcknowledged(ev *pb.MessagePossiblyAcknowledged) {
	a.rec(ev)
}
func (a *allEvents) OnMessageUnacknowledged(ev *pb.MessageUnacknowledged) { a.rec(ev) }
func (a *allEvents) OnResendRequested(ev *pb.ResendRequested)             { a.rec(ev) }
func (a *allEvents) OnMissingDependencies(ev *pb.MissingDependencies)     { a.rec(ev) }
func (a *allEvents) OnMessageLost(ev *pb.MessageLost)                     { a.rec(ev) }
func (a *allEvents) OnSyncDue(ev *pb.SyncDue)                             { a.rec(ev) }
func (a *allEvents) OnRepairReady(ev *pb.RepairReady)                     { a.rec(ev) }
func (a *allEvents) OnPersistenceFailed(ev *pb.PersistenceFailed)         { a.rec(ev) }

var _ pb.EventHandler = (*allEvents)(nil)

// TestDispatchEventFromIDL sends one event of every kind the IDL's Event oneof has and
// checks that each reaches its own handler method, and EventName names it.
func TestDispatchEventFromIDL(t *testing.T) {
	oneof := (&pb.Event{}).ProtoReflect().Descriptor().Oneofs().ByName("event")
	h := &allEvents{}
	var want []string
	for i := range oneof.Fields().Len() {
		fd := oneof.Fields().Get(i)
		ev := &pb.Event{}
		ev.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(ev.ProtoReflect().NewField(fd).Message()))
		pb.DispatchEvent(h, ev)
		name := string(fd.Message().Name())
		want = append(want, name)
		if got := pb.EventName(ev); got != name {
			t.Errorf("EventName = %q, want %q", got, name)
		}
	}
	if len(want) != 10 {
		t.Errorf("%d event kinds, want 10", len(want))
	}
	if !slices.Equal(h.got, want) {
		t.Fatalf("handled %v, want %v", h.got, want)
	}
}

// onlyReady handles one kind and embeds the no-op base for the rest.
type onlyReady struct {
	pb.UnimplementedEventHandler
	ids []string
}

func (o *onlyReady) OnMessageReady(ev *pb.MessageReady) { o.ids = append(o.ids, ev.GetMessageId()) }

func TestUnimplementedEventHandler(t *testing.T) {
	o := &onlyReady{}
	for _, ev := range []*pb.Event{
		{Event: &pb.Event_SyncDue{SyncDue: &pb.SyncDue{ChannelId: "c"}}},
		{Event: &pb.Event_MessageReady{MessageReady: &pb.MessageReady{MessageId: "m1"}}},
		{Event: &pb.Event_MessageReady{}}, // nil payload: ignored
		{},                                // empty: ignored
		nil,                               // nil: ignored
	} {
		pb.DispatchEvent(o, ev)
	}
	if !slices.Equal(o.ids, []string{"m1"}) {
		t.Fatalf("ids %v", o.ids)
	}
	if pb.EventName(nil) != "" || pb.EventName(&pb.Event{}) != "" {
		t.Fatal("EventName of an empty event")
	}
}
