// Command orders is a Rill client in Go, on stubs generated from proto/ (no hand-written
// protocol code): it produces keyed JSON orders into a topic, or processes them as a member of
// a consumer group through GroupService.Consume, committing after processing.
//
//	orders produce [-addr HOST:PORT] [-topic orders] [-partitions 6] [-count 10] [-first 1]
//	orders consume [-addr HOST:PORT] [-topic orders] [-group order-processing] [-commit-every 1]
//	               [-session-timeout-ms 0] [-from earliest|latest] [-client-id orders-go]
//
// produce creates the topic when it is missing, sends orders first..first+count-1 (key
// "customer-N", value {"order":..,"customer":..,"amount":..}) with acks=all, and prints one JSON
// line per order: {"type":"produced","partition":P,"offset":O,"key":K,"value":V}.
//
// consume joins the group; the broker assigns its partitions (no assignor or heartbeat loop
// here) and streams their records from the group's committed offsets. It prints one JSON line
// per event: "assigned" and "revoked" (partitions), "record" (a processed order), "commit" (offsets
// sent, with a commit id), "committed" (an offset the broker confirmed: the next offset to read). Offsets are committed once every
// -commit-every processed records, and for a partition at once when it is revoked. SIGINT or
// SIGTERM commits what was processed, leaves the group and prints {"type":"closed"}.
//
// Build (Debian 12: golang-go golang-google-grpc-dev golang-google-protobuf-dev protoc-gen-go
// protoc-gen-go-grpc protobuf-compiler), from the repository's root:
//
//	mkdir -p gen/go/src
//	protoc -Iproto --go_out=gen/go/src --go_opt=paths=import --go-grpc_out=gen/go/src \
//	  --go-grpc_opt=paths=import proto/rill/v1/{common,security,admin_service,produce_service,group_service}.proto
//	GO111MODULE=off GOPATH=$PWD/gen/go:/usr/share/gocode go build -o orders-go ./examples/go/orders
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	rillv1 "github.com/rill/rill/gen/go/rill/v1"
	"google.golang.org/grpc"
)

const callTimeout = 10 * time.Second

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "produce" && os.Args[1] != "consume") {
		fmt.Fprintln(os.Stderr, "usage: orders produce|consume [flags]  (orders produce -h for the flags)")
		os.Exit(2)
	}
	var err error
	if os.Args[1] == "produce" {
		err = produce(os.Args[2:])
	} else {
		err = consume(os.Args[2:])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "orders %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// emit prints one JSON line on stdout.
func emit(line map[string]interface{}) {
	b, err := json.Marshal(line)
	if err != nil {
		panic(err) // only maps of plain values are emitted
	}
	fmt.Println(string(b))
}

func dial(addr string) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	// grpc-go 1.33 (Debian 12): plaintext is WithInsecure.
	return grpc.DialContext(ctx, addr, grpc.WithInsecure(), grpc.WithBlock())
}

// An order, as produced and processed.
type order struct {
	Order    int    `json:"order"`
	Customer string `json:"customer"`
	Amount   int    `json:"amount"`
}

func produce(args []string) error {
	fs := flag.NewFlagSet("produce", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:50051", "the broker's gRPC address")
	topic := fs.String("topic", "orders", "topic to produce to")
	partitions := fs.Int("partitions", 6, "partitions of the topic when it has to be created")
	count := fs.Int("count", 10, "how many orders to send")
	first := fs.Int("first", 1, "number of the first order")
	fs.Parse(args)
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}

	conn, err := dial(*addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *addr, err)
	}
	defer conn.Close()
	if err := ensureTopic(rillv1.NewAdminServiceClient(conn), *topic, int32(*partitions)); err != nil {
		return err
	}
	if *count <= 0 {
		return nil
	}
	records := make([]*rillv1.Record, 0, *count)
	for n := *first; n < *first+*count; n++ {
		o := order{Order: n, Customer: fmt.Sprintf("customer-%d", n*7%40), Amount: n*37%1000 + 1}
		value, _ := json.Marshal(o)
		records = append(records, &rillv1.Record{Key: []byte(o.Customer), Value: value})
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	// No partition: the broker routes each record by its key (murmur2, as Kafka).
	resp, err := rillv1.NewProduceServiceClient(conn).Produce(ctx, &rillv1.ProduceRequest{
		Topic: *topic, Records: records, Acks: rillv1.Acks_ACKS_ALL,
	})
	if err != nil {
		return fmt.Errorf("produce to %s: %w", *topic, err)
	}
	for _, p := range resp.Partitions {
		if p.Error != nil {
			return fmt.Errorf("produce to %s-%d: %s: %s", *topic, p.Partition, p.Error.Name, p.Error.Message)
		}
	}
	if len(resp.Records) != len(records) {
		return fmt.Errorf("produce to %s: %d records placed for %d sent", *topic, len(resp.Records), len(records))
	}
	for i, at := range resp.Records {
		emit(map[string]interface{}{"type": "produced", "partition": at.Partition, "offset": at.Offset,
			"key": string(records[i].Key), "value": string(records[i].Value)})
	}
	return nil
}

// ensureTopic creates `topic` unless it exists.
func ensureTopic(admin rillv1.AdminServiceClient, topic string, partitions int32) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	list, err := admin.ListTopics(ctx, &rillv1.ListTopicsRequest{})
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	for _, t := range list.Topics {
		if t.Name == topic {
			return nil
		}
	}
	created, err := admin.CreateTopics(ctx, &rillv1.CreateTopicsRequest{
		Topics: []*rillv1.CreateTopicsRequest_Topic{{Name: topic, Partitions: partitions}},
	})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	// Another client may have created it meanwhile.
	if e := created.Topics[0].Error; e != nil && e.Name != "TOPIC_ALREADY_EXISTS" {
		return fmt.Errorf("create topic %s: %s: %s", topic, e.Name, e.Message)
	}
	return nil
}

// member is one group member's state: what it owns and what it processed but did not commit.
type member struct {
	stream      rillv1.GroupService_ConsumeClient
	topic       string
	commitEvery int
	owned       map[int32]bool
	pending     map[int32]int64 // partition -> next offset to commit
	processed   int             // records processed since the last commit
	nextCommit  uint64
	totals      map[string]int // amount per customer: the "processing"
}

func consume(args []string) error {
	fs := flag.NewFlagSet("consume", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:50051", "the broker's gRPC address")
	topic := fs.String("topic", "orders", "topic to consume")
	group := fs.String("group", "order-processing", "consumer group id")
	commitEvery := fs.Int("commit-every", 1, "commit once every N processed records (1..500)")
	sessionTimeoutMs := fs.Int("session-timeout-ms", 0, "session timeout; 0: the broker's default")
	from := fs.String("from", "earliest", "where a partition without a committed offset starts: earliest or latest")
	clientID := fs.String("client-id", "orders-go", "client id shown by DescribeGroups")
	fs.Parse(args)
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	if *commitEvery < 1 || *commitEvery > 500 {
		return fmt.Errorf("-commit-every %d: must be 1 to 500", *commitEvery)
	}
	reset := map[string]rillv1.AutoOffsetReset{
		"earliest": rillv1.AutoOffsetReset_AUTO_OFFSET_RESET_EARLIEST,
		"latest":   rillv1.AutoOffsetReset_AUTO_OFFSET_RESET_LATEST,
	}[*from]
	if reset == rillv1.AutoOffsetReset_AUTO_OFFSET_RESET_UNSPECIFIED {
		return fmt.Errorf("-from %q: must be earliest or latest", *from)
	}

	conn, err := dial(*addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := rillv1.NewGroupServiceClient(conn).Consume(ctx)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	// Credit: the broker sends at most this many records beyond the last commit.
	err = stream.Send(&rillv1.ConsumeRequest{Kind: &rillv1.ConsumeRequest_Subscribe_{Subscribe: &rillv1.ConsumeRequest_Subscribe{
		GroupId: *group, Topics: []string{*topic}, AutoOffsetReset: reset, MaxOutstandingRecords: 1000,
		Format: rillv1.RecordFormat_RECORD_FORMAT_RECORDS, SessionTimeoutMs: int32(*sessionTimeoutMs), ClientId: *clientID,
	}}})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	m := &member{stream: stream, topic: *topic, commitEvery: *commitEvery, owned: map[int32]bool{},
		pending: map[int32]int64{}, totals: map[string]int{}}

	responses := make(chan *rillv1.ConsumeResponse)
	ended := make(chan error, 1)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				ended <- err
				return
			}
			responses <- r
		}
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	stopping := false
	for {
		select {
		case r := <-responses:
			if err := m.handle(r, stopping); err != nil {
				return err
			}
		case <-signals:
			if stopping {
				continue
			}
			// Commit what was processed, then half-close: the broker removes the member and ends
			// the stream. Records still arriving are not processed (the next owner gets them).
			stopping = true
			if err := m.commit(); err != nil {
				return err
			}
			if err := stream.CloseSend(); err != nil {
				return fmt.Errorf("leave: %w", err)
			}
			time.AfterFunc(callTimeout, cancel)
		case err := <-ended:
			if errors.Is(err, io.EOF) && stopping {
				emit(map[string]interface{}{"type": "closed"})
				return nil
			}
			if errors.Is(err, io.EOF) {
				return errors.New("the broker ended the stream")
			}
			return fmt.Errorf("stream: %w", err)
		}
	}
}

// handle applies one message of the stream.
func (m *member) handle(r *rillv1.ConsumeResponse, stopping bool) error {
	switch k := r.Kind.(type) {
	case *rillv1.ConsumeResponse_Assignment_:
		a := k.Assignment
		if revoked := m.partitionsOf(a.Revoked); len(revoked) > 0 {
			// Commit what was processed of them before they go to another member.
			if err := m.commit(revoked...); err != nil {
				return err
			}
			for _, p := range revoked {
				delete(m.owned, p)
			}
			emit(map[string]interface{}{"type": "revoked", "member": a.MemberId, "partitions": revoked})
		}
		if assigned := m.partitionsOf(a.Assigned); len(assigned) > 0 {
			for _, p := range assigned {
				m.owned[p] = true
			}
			emit(map[string]interface{}{"type": "assigned", "member": a.MemberId, "partitions": assigned})
		}
	case *rillv1.ConsumeResponse_Records_:
		rs := k.Records
		if rs.Error != nil {
			return fmt.Errorf("%s-%d at %d: %s: %s", rs.Topic, rs.Partition, rs.FirstOffset, rs.Error.Name, rs.Error.Message)
		}
		if stopping || !m.owned[rs.Partition] {
			return nil
		}
		for _, rec := range rs.Records {
			m.process(rec)
			m.pending[rec.Partition] = rec.Offset + 1
			m.processed++
			if m.processed >= m.commitEvery {
				if err := m.commit(); err != nil {
					return err
				}
			}
		}
	case *rillv1.ConsumeResponse_CommitResult_:
		cr := k.CommitResult
		if cr.Error != nil {
			return fmt.Errorf("commit %d: %s: %s", cr.CommitId, cr.Error.Name, cr.Error.Message)
		}
		for _, o := range cr.Offsets {
			if o.Error != nil {
				// E.g. a partition revoked meanwhile: its next owner reads it from the last commit.
				fmt.Fprintf(os.Stderr, "orders consume: commit of %s-%d at %d refused: %s: %s\n",
					o.Topic, o.Partition, o.Offset, o.Error.Name, o.Error.Message)
				continue
			}
			emit(map[string]interface{}{"type": "committed", "commit_id": cr.CommitId, "partition": o.Partition, "offset": o.Offset})
		}
	}
	return nil
}

// process is the application's work on one order: here, a running total per customer.
func (m *member) process(rec *rillv1.ConsumedRecord) {
	var o order
	if err := json.Unmarshal(rec.Value, &o); err != nil {
		fmt.Fprintf(os.Stderr, "orders consume: %s-%d at %d is not an order: %v\n", rec.Topic, rec.Partition, rec.Offset, err)
	}
	m.totals[o.Customer] += o.Amount
	emit(map[string]interface{}{"type": "record", "partition": rec.Partition, "offset": rec.Offset,
		"key": string(rec.Key), "value": string(rec.Value), "customer_total": m.totals[o.Customer]})
}

// commit sends the pending offsets of `only` (all partitions when empty) on the stream; the
// broker answers with a commit_result.
func (m *member) commit(only ...int32) error {
	var offsets []*rillv1.OffsetCommit
	for p, next := range m.pending {
		if len(only) > 0 && !contains(only, p) {
			continue
		}
		offsets = append(offsets, &rillv1.OffsetCommit{Topic: m.topic, Partition: p, Offset: next, LeaderEpoch: -1})
		delete(m.pending, p)
	}
	if len(only) == 0 {
		m.processed = 0
	}
	if len(offsets) == 0 {
		return nil
	}
	sort.Slice(offsets, func(i, j int) bool { return offsets[i].Partition < offsets[j].Partition })
	m.nextCommit++
	err := m.stream.Send(&rillv1.ConsumeRequest{Kind: &rillv1.ConsumeRequest_Commit_{Commit: &rillv1.ConsumeRequest_Commit{
		Offsets: offsets, CommitId: m.nextCommit,
	}}})
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	sent := make([]map[string]interface{}, len(offsets))
	for i, o := range offsets {
		sent[i] = map[string]interface{}{"partition": o.Partition, "offset": o.Offset}
	}
	emit(map[string]interface{}{"type": "commit", "commit_id": m.nextCommit, "offsets": sent})
	return nil
}

// partitionsOf lists the partitions of this member's topic in `tps`, sorted.
func (m *member) partitionsOf(tps []*rillv1.TopicPartition) []int32 {
	out := []int32{}
	for _, tp := range tps {
		if tp.Topic == m.topic {
			out = append(out, tp.Partition)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func contains(ps []int32, p int32) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}
