package integration

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-go/chronik/core/component"
)

// TestAutoCreateOnNonController: a Metadata request that auto-creates a
// topic reaches a broker that does not lead the metadata group; it forwards
// the creation to the controller.
func TestAutoCreateOnNonController(t *testing.T) { forEachBackend(t, testAutoCreateOnNonController) }

func testAutoCreateOnNonController(t *testing.T, consensus component.Type) {
	c := StartCluster(t, Options{Brokers: 3, Consensus: consensus})
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var controller int32 = -1
	for controller < 1 && ctx.Err() == nil {
		controller = c.Node(0).Broker.Cluster(ctx).Controller
		time.Sleep(20 * time.Millisecond)
	}
	other := c.Addrs()[controller%3] // broker controller+1, wrapping
	cl, err := kgo.NewClient(kgo.SeedBrokers(other), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("auto"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to an auto-created topic through broker %s (controller %d): %v", other, controller, err)
	}
	td, err := adm.ListTopics(ctx, "auto")
	if err != nil || td["auto"].Err != nil || len(td["auto"].Partitions) != 1 {
		t.Fatalf("topic auto: %v %+v", err, td["auto"])
	}
}
