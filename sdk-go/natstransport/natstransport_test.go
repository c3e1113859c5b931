package natstransport_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	sdskit "github.com/sdskit/sdskit/sdk-go"
	"github.com/sdskit/sdskit/sdk-go/natstransport"
	"google.golang.org/protobuf/proto"
)

// startServer runs an embedded NATS server on a random loopback port for one test.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func TestReliableChannelsOverNATS(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	cfg := &sdskit.Config{ResendIntervalMs: proto.Uint64(200), SyncIntervalMs: proto.Uint64(300),
		SweepIntervalMs: proto.Uint64(20), RepairTMinMs: proto.Uint64(50), RepairTMaxMs: proto.Uint64(300)}
	var mu sync.Mutex
	got := map[string]map[string]string{}
	var chans []*sdskit.ReliableChannel
	for _, name := range []string{"alice", "bob", "carol"} {
		tr, err := natstransport.Dial(s.ClientURL(), "sdskit.test.room")
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		got[name] = map[string]string{}
		c, err := sdskit.OpenReliableChannel(ctx, name, "room", tr, sdskit.ChannelOptions{
			OnMessage: func(m *sdskit.MessageReady) {
				mu.Lock()
				got[name][m.GetMessageId()] = string(m.GetContent())
				mu.Unlock()
			},
		}, sdskit.WithConfig(cfg), sdskit.WithMemoryPersistence())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		chans = append(chans, c)
	}
	for i, c := range chans {
		for k := 0; k < 5; k++ {
			if err := c.SendWithID(ctx, fmt.Sprintf("m%d-%d", i, k), []byte(fmt.Sprintf("hello %d/%d", i, k))); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		done := len(got["alice"]) == 10 && len(got["bob"]) == 10 && len(got["carol"]) == 10
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged: %d %d %d", len(got["alice"]), len(got["bob"]), len(got["carol"]))
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["carol"]["m0-3"] != "hello 0/3" || got["alice"]["m2-4"] != "hello 2/4" {
		t.Fatalf("wrong content: %v", got)
	}
	if _, own := got["alice"]["m0-0"]; own {
		t.Fatal("NoEcho: alice received her own message")
	}
}

func TestBadInput(t *testing.T) {
	if _, err := natstransport.Dial("nats://127.0.0.1:1", ""); err == nil {
		t.Fatal("empty subject accepted")
	}
	if _, err := natstransport.New(nil, "x"); err == nil {
		t.Fatal("nil connection accepted")
	}
	if _, err := natstransport.Dial("nats://127.0.0.1:1", "x"); err == nil {
		t.Fatal("connecting to a closed port succeeded")
	}
}

func TestPublishAfterCloseFails(t *testing.T) {
	s := startServer(t)
	tr, err := natstransport.Dial(s.ClientURL(), "x")
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
	if err := tr.Publish(context.Background(), []byte("late")); err == nil {
		t.Fatal("publish on a closed connection succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tr.Publish(ctx, []byte("x")); err == nil {
		t.Fatal("publish with a cancelled context succeeded")
	}
}
