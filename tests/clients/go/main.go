// franz-scenario: a franz-go (github.com/twmb/franz-go) client exercising a Kafka endpoint (Sluice
// or a real broker) through one scenario per run.
//
// Usage:
//
//	franz-scenario <scenario> --bootstrap HOST:PORT --topic T [--records N] [--forbid-ports p1,p2]
//	               [--protocol classic|consumer] [--partitions 6] [--replication-factor 3]
//	               [--expect-brokers 3] [--records-after 300] [--timeout 60] [--verbose]
//
// Aliases matching the Java scenario client: --rf, --brokers, --timeout-ms.
//
// Scenarios: produce-consume, group-rebalance, admin, idempotent, transactional, leader-change.
//
// Prints exactly one JSON line on stdout ({"scenario":...,"ok":true|false,...}) and exits 0 only if
// every check passed; on failure the reason is also written to stderr and the exit status is 1
// (2 for usage errors, 3 when the watchdog fires). leader-change additionally prints {"leader":N}
// first and then waits for a line "go" on stdin (the handshake of the Java client's scenario).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

type options struct {
	scenario      string
	bootstrap     string
	topic         string
	records       int
	forbid        map[int32]bool
	protocol      string
	partitions    int32
	rf            int16
	expectBrokers int
	recordsAfter  int
	timeout       time.Duration
	verbose       bool
	runID         string
	saslMechanism string
	saslUser      string
	saslPass      string
}

type result map[string]any

// failure is a failed check: the scenario stops and reports it.
type failure struct{ msg string }

func (f failure) Error() string { return f.msg }

func failf(format string, args ...any) error { return failure{fmt.Sprintf(format, args...)} }

func main() {
	o, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "franz-scenario: %v\n", err)
		fmt.Fprintln(os.Stderr, "usage: franz-scenario <produce-consume|group-rebalance|admin|idempotent|transactional|leader-change> --bootstrap HOST:PORT --topic T [--records N] [--forbid-ports p1,p2] [--protocol classic|consumer] [--partitions N] [--replication-factor N] [--expect-brokers N] [--records-after N] [--timeout SECS] [--verbose]")
		os.Exit(2)
	}

	// Hard watchdog: whatever happens inside a client library, never hang past the deadline.
	time.AfterFunc(o.timeout+15*time.Second, func() {
		fmt.Fprintf(os.Stderr, "franz-scenario: watchdog: scenario %q did not finish within %v\n", o.scenario, o.timeout+15*time.Second)
		emit(result{"scenario": o.scenario, "ok": false, "error": "watchdog timeout"})
		os.Exit(3)
	})

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	res := result{"scenario": o.scenario, "client": "franz-go"}
	var run func(context.Context, *options, result) error
	switch o.scenario {
	case "produce-consume":
		run = produceConsume
	case "group-rebalance":
		run = groupRebalance
	case "admin":
		run = adminScenario
	case "idempotent":
		run = idempotent
	case "transactional":
		run = transactional
	case "leader-change":
		run = leaderChange
	}
	start := time.Now()
	err = run(ctx, o, res)
	res["elapsed_ms"] = time.Since(start).Milliseconds()
	res["dialed"] = o.dialedAddrs()
	if n := firstReadEOFs.Load(); n > 0 {
		res["first_read_eof_errors"] = n
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (scenario deadline of %v exceeded)", err, o.timeout)
	}
	if err != nil {
		res["ok"] = false
		res["error"] = err.Error()
		emit(res)
		fmt.Fprintf(os.Stderr, "franz-scenario %s: FAILED: %v\n", o.scenario, err)
		os.Exit(1)
	}
	res["ok"] = true
	emit(res)
}

var emitOnce sync.Once

// emit prints the result as one JSON line: "scenario" and "ok" first (as the Java client does, so
// the harness can find the line by its prefix), then the other fields in key order.
func emit(r result) {
	emitOnce.Do(func() {
		var b strings.Builder
		b.WriteByte('{')
		write := func(k string, v any) {
			if b.Len() > 1 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			vb, err := json.Marshal(v)
			if err != nil {
				vb, _ = json.Marshal(fmt.Sprint(v))
			}
			b.Write(kb)
			b.WriteByte(':')
			b.Write(vb)
		}
		write("scenario", r["scenario"])
		write("ok", r["ok"] == true)
		keys := make([]string, 0, len(r))
		for k := range r {
			if k != "scenario" && k != "ok" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			write(k, r[k])
		}
		b.WriteString("}\n")
		os.Stdout.WriteString(b.String())
	})
}

func parseArgs(args []string) (*options, error) {
	o := &options{forbid: map[int32]bool{}}
	fs := flag.NewFlagSet("franz-scenario", flag.ContinueOnError)
	fs.StringVar(&o.bootstrap, "bootstrap", "", "bootstrap HOST:PORT")
	fs.StringVar(&o.topic, "topic", "", "topic name (admin: prefix)")
	fs.IntVar(&o.records, "records", 2000, "number of records")
	forbid := fs.String("forbid-ports", "", "comma-separated broker ports the client must never learn")
	fs.StringVar(&o.protocol, "protocol", "classic", "group protocol: classic or consumer (KIP-848)")
	parts := fs.Int("partitions", 0, "partitions for created topics (default 3 for leader-change, else 6)")
	rf := fs.Int("replication-factor", 3, "replication factor for created topics")
	fs.IntVar(rf, "rf", 3, "alias of --replication-factor")
	fs.IntVar(&o.expectBrokers, "expect-brokers", 3, "admin: number of brokers the cluster must report (0: don't check)")
	fs.IntVar(&o.expectBrokers, "brokers", 3, "alias of --expect-brokers")
	fs.IntVar(&o.recordsAfter, "records-after", 300, "leader-change: records acked after 'go' (over all partitions) before stopping")
	secs := fs.Float64("timeout", 60, "overall scenario deadline in seconds")
	ms := fs.Int64("timeout-ms", 0, "overall scenario deadline in milliseconds (overrides --timeout)")
	fs.BoolVar(&o.verbose, "verbose", false, "client debug logging to stderr")
	fs.StringVar(&o.saslMechanism, "sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_PLAINTEXT); empty: no SASL")
	fs.StringVar(&o.saslUser, "sasl-username", "", "SASL user")
	fs.StringVar(&o.saslPass, "sasl-password", "", "SASL password")
	// The scenario is the one positional argument (normally first; flags may come on either side).
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		return nil, fmt.Errorf("expected exactly one scenario argument, got %v", positional)
	}
	o.scenario = positional[0]
	switch o.scenario {
	case "produce-consume", "group-rebalance", "admin", "idempotent", "transactional", "leader-change":
	default:
		return nil, fmt.Errorf("unknown scenario %q", o.scenario)
	}
	if o.bootstrap == "" || o.topic == "" {
		return nil, errors.New("--bootstrap and --topic are required")
	}
	if o.records <= 0 {
		return nil, errors.New("--records must be positive")
	}
	switch o.saslMechanism {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return nil, fmt.Errorf("--sasl-mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not %q", o.saslMechanism)
	}
	if o.protocol != "classic" && o.protocol != "consumer" {
		return nil, fmt.Errorf("--protocol must be classic or consumer, not %q", o.protocol)
	}
	for _, p := range strings.Split(*forbid, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad --forbid-ports entry %q", p)
		}
		o.forbid[int32(n)] = true
	}
	o.partitions = int32(*parts)
	if o.partitions <= 0 {
		o.partitions = 6
		if o.scenario == "leader-change" {
			o.partitions = 3
		}
	}
	o.rf = int16(*rf)
	o.timeout = time.Duration(*secs * float64(time.Second))
	if *ms > 0 {
		o.timeout = time.Duration(*ms) * time.Millisecond
	}
	o.runID = strconv.FormatInt(time.Now().UnixNano()%1_000_000_000_000, 36)
	return o, nil
}

// ---------------------------------------------------------------------------------------------
// helpers

func (o *options) client(extra ...kgo.Opt) (*kgo.Client, error) {
	level := kgo.LogLevelWarn
	if o.verbose {
		level = kgo.LogLevelDebug
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(o.bootstrap, ",")...),
		kgo.ClientID("franz-scenario"),
		kgo.WithLogger(countingLogger{kgo.BasicLogger(os.Stderr, level, func() string { return "[franz] " })}),
		kgo.RetryTimeout(20 * time.Second),
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.WithHooks(dialed),
	}
	// SASL_PLAINTEXT (KIP-43, KIP-84, KIP-152).
	switch o.saslMechanism {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: o.saslUser, Pass: o.saslPass}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.saslUser, Pass: o.saslPass}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.saslUser, Pass: o.saslPass}.AsSha512Mechanism()))
	}
	return kgo.NewClient(append(opts, extra...)...)
}

// firstReadEOFs counts the errors franz-go logged as *kgo.ErrFirstReadEOF: a connection the peer
// closed before answering its first request. franz-go takes that for a TLS or SASL mismatch and
// does not retry it (a dead broker would refuse the connection instead, which it retries).
var firstReadEOFs atomic.Int64

// countingLogger passes everything on and counts *kgo.ErrFirstReadEOF errors in log lines.
type countingLogger struct{ kgo.Logger }

func (l countingLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	for _, kv := range keyvals {
		if err, ok := kv.(error); ok {
			var eof *kgo.ErrFirstReadEOF
			if errors.As(err, &eof) {
				firstReadEOFs.Add(1)
				break
			}
		}
	}
	l.Logger.Log(level, msg, keyvals...)
}

// checkBrokers fails if any broker's port is one the client must never learn.
func (o *options) checkBrokers(where string, brokers []kgo.BrokerMetadata) ([]string, error) {
	if len(brokers) == 0 {
		return nil, failf("%s: no brokers reported", where)
	}
	var addrs []string
	for _, b := range brokers {
		addr := fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port)
		addrs = append(addrs, addr)
		if o.forbid[b.Port] {
			return addrs, failf("%s: client learned forbidden broker address %s (a real broker port leaked through)", where, addr)
		}
	}
	sort.Strings(addrs)
	return addrs, nil
}

// connHook records every broker address any client of this process dialed (seeds included).
type connHook struct {
	mu    sync.Mutex
	addrs map[string]kgo.BrokerMetadata
}

var dialed = &connHook{addrs: map[string]kgo.BrokerMetadata{}}

func (h *connHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addrs[fmt.Sprintf("%s:%d", meta.Host, meta.Port)] = meta
}

// checkDiscovered checks every address any client dialed: none may be a forbidden (real broker)
// port. The clients are only listed for documentation; the hook is process-wide.
func (o *options) checkDiscovered(where string, _ ...*kgo.Client) error {
	dialed.mu.Lock()
	defer dialed.mu.Unlock()
	var addrs []string
	for addr, meta := range dialed.addrs {
		addrs = append(addrs, addr)
		if o.forbid[meta.Port] {
			return failf("%s: a client connected to forbidden broker address %s (a real broker port leaked through)", where, addr)
		}
	}
	if len(addrs) == 0 {
		return failf("%s: no broker connections recorded", where)
	}
	return nil
}

func (o *options) dialedAddrs() []string {
	dialed.mu.Lock()
	defer dialed.mu.Unlock()
	var addrs []string
	for addr := range dialed.addrs {
		addrs = append(addrs, addr)
	}
	sort.Strings(addrs)
	return addrs
}

// ensureTopic creates the topic (ok if it exists) and waits until every partition has a leader.
func (o *options) ensureTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	_, err := adm.CreateTopic(ctx, o.partitions, o.rf, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return waitTopicReady(ctx, adm, topic, -1)
}

func waitTopicReady(ctx context.Context, adm *kadm.Client, topic string, want int32) error {
	var last string
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td, ok := md.Topics[topic]
			switch {
			case !ok:
				last = "topic missing from metadata"
			case td.Err != nil:
				last = td.Err.Error()
			case len(td.Partitions) == 0 || (want > 0 && int32(len(td.Partitions)) != want):
				last = fmt.Sprintf("%d partitions", len(td.Partitions))
			default:
				ready := true
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
						last = fmt.Sprintf("partition %d not ready (leader %d, err %v)", p.Partition, p.Leader, p.Err)
					}
				}
				if ready {
					return nil
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not ready: %s", topic, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// endOffsets returns the log end offset of every partition of topic, retrying transient errors
// (right after creation a partition's leadership may still be settling).
func (o *options) endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	var last error
	for {
		listed, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			out := map[int32]int64{}
			listed.Each(func(lo kadm.ListedOffset) {
				switch {
				case lo.Err != nil:
					err = fmt.Errorf("partition %d: %w", lo.Partition, lo.Err)
				case lo.Offset < 0:
					err = fmt.Errorf("partition %d: no end offset (%d)", lo.Partition, lo.Offset)
				default:
					out[lo.Partition] = lo.Offset
				}
			})
			if err == nil && int32(len(out)) >= o.partitions {
				return out, nil
			}
			if err == nil {
				err = fmt.Errorf("end offsets for %d of %d partitions", len(out), o.partitions)
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list end offsets of %s: %w", topic, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type delivered struct {
	value     string
	partition int32
	offset    int64
}

// produce sends the records and waits for every delivery report; returns key -> delivery.
func produce(ctx context.Context, cl *kgo.Client, topic string, recs []*kgo.Record) (map[string]delivered, error) {
	var mu sync.Mutex
	out := make(map[string]delivered, len(recs))
	var firstErr error
	errCount := 0
	var wg sync.WaitGroup
	for _, r := range recs {
		r.Topic = topic
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errCount++
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			out[string(r.Key)] = delivered{string(r.Value), r.Partition, r.Offset}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	wg.Wait()
	if errCount > 0 {
		return nil, fmt.Errorf("%d of %d records failed delivery, first error: %w", errCount, len(recs), firstErr)
	}
	if len(out) != len(recs) {
		return nil, failf("%d delivery reports for %d records (duplicate keys?)", len(out), len(recs))
	}
	return out, nil
}

func makeRecords(prefix string, n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Key:   []byte(fmt.Sprintf("%s-k-%06d", prefix, i)),
			Value: []byte(fmt.Sprintf("%s-v-%06d-%s", prefix, i, strings.Repeat("x", i%64))),
		}
	}
	return recs
}

// verifier checks consumed records against delivery reports.
type verifier struct {
	want      map[string]delivered
	seen      map[string]string // key -> consumer name
	foreign   int
	problems  []string
	perOwner  map[string]int
	partsSeen map[int32]bool
	mu        sync.Mutex
}

func newVerifier(want map[string]delivered) *verifier {
	return &verifier{want: want, seen: map[string]string{}, perOwner: map[string]int{}, partsSeen: map[int32]bool{}}
}

func (v *verifier) problem(format string, args ...any) {
	if len(v.problems) < 10 {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
}

func (v *verifier) add(owner string, r *kgo.Record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	key := string(r.Key)
	d, ok := v.want[key]
	if !ok {
		v.foreign++
		return
	}
	if prev, dup := v.seen[key]; dup {
		v.problem("duplicate record key %s (first consumed by %s, again by %s at p%d@%d)", key, prev, owner, r.Partition, r.Offset)
		return
	}
	v.seen[key] = owner
	v.perOwner[owner]++
	v.partsSeen[r.Partition] = true
	if string(r.Value) != d.value {
		v.problem("key %s: value %q, produced %q", key, r.Value, d.value)
	}
	if r.Partition != d.partition || r.Offset != d.offset {
		v.problem("key %s: consumed at p%d@%d but delivery report said p%d@%d", key, r.Partition, r.Offset, d.partition, d.offset)
	}
}

func (v *verifier) done() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.seen) >= len(v.want) || len(v.problems) > 0
}

func (v *verifier) check() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.problems) > 0 {
		return failf("consumed records do not match produced: %s", strings.Join(v.problems, "; "))
	}
	if len(v.seen) != len(v.want) {
		var missing []string
		for k := range v.want {
			if _, ok := v.seen[k]; !ok {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		if len(missing) > 5 {
			missing = missing[:5]
		}
		return failf("consumed %d of %d produced records; missing e.g. %v", len(v.seen), len(v.want), missing)
	}
	return nil
}

func (v *verifier) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.seen)
}

// consumeAll polls cl until the verifier has everything (or a problem, or the deadline).
func consumeAll(ctx context.Context, cl *kgo.Client, owner string, v *verifier) error {
	for !v.done() {
		if ctx.Err() != nil {
			return fmt.Errorf("consuming: %w (have %d of %d)", ctx.Err(), v.count(), len(v.want))
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		if err := fetchErr(fs); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) { v.add(owner, r) })
	}
	return nil
}

// fetchErr returns the first non-retriable, non-timeout fetch error.
func fetchErr(fs kgo.Fetches) error {
	var out error
	fs.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || kerr.IsRetriable(err) {
			return
		}
		if out == nil {
			out = fmt.Errorf("fetch error on %s[%d]: %w", t, p, err)
		}
	})
	return out
}

func partitionsCovered(want map[string]delivered) int {
	ps := map[int32]bool{}
	for _, d := range want {
		ps[d.partition] = true
	}
	return len(ps)
}

// ---------------------------------------------------------------------------------------------
// scenarios

func produceConsume(ctx context.Context, o *options, res result) error {
	admCl, err := o.client()
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	addrs, err := o.checkBrokers("admin metadata", md.Brokers)
	res["broker_addrs"] = addrs
	if err != nil {
		return err
	}
	if err := o.ensureTopic(ctx, adm, o.topic); err != nil {
		return err
	}
	// Partition leaders must sit on every broker, so the records travel through every one of
	// Sluice's per-broker ports.
	tmd, err := adm.Metadata(ctx, o.topic)
	if err != nil {
		return fmt.Errorf("topic metadata: %w", err)
	}
	leaderSet := map[int32]bool{}
	for _, p := range tmd.Topics[o.topic].Partitions {
		leaderSet[p.Leader] = true
	}
	leaders := make([]int, 0, len(leaderSet))
	for l := range leaderSet {
		leaders = append(leaders, int(l))
	}
	sort.Ints(leaders)
	res["leaders"] = leaders
	if want := min(o.expectBrokers, int(o.partitions)); o.expectBrokers > 0 && len(leaders) < want {
		return fmt.Errorf("partition leaders on brokers %v only, expected all %d", leaders, o.expectBrokers)
	}

	prod, err := o.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer prod.Close()
	want, err := produce(ctx, prod, o.topic, makeRecords("pc-"+o.runID, o.records))
	if err != nil {
		return err
	}
	res["produced"] = len(want)
	res["partitions_written"] = partitionsCovered(want)
	if o.records >= int(o.partitions)*20 && partitionsCovered(want) != int(o.partitions) {
		return failf("records landed on %d partitions, expected all %d", partitionsCovered(want), o.partitions)
	}

	group := "franz-pc-" + o.runID
	cons, err := o.client(
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(o.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cons.Close()
	v := newVerifier(want)
	if err := consumeAll(ctx, cons, "consumer", v); err != nil {
		return err
	}
	res["consumed"] = v.count()
	res["foreign"] = v.foreign
	if err := v.check(); err != nil {
		return err
	}
	res["records"] = v.count()
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return o.checkDiscovered("produce-consume", admCl, prod, cons)
}

type member struct {
	name     string
	cl       *kgo.Client
	mu       sync.Mutex
	assigned map[int32]bool
	events   *[]string
	evMu     *sync.Mutex
	start    time.Time
}

func (m *member) event(kind string, parts map[string][]int32, topic string) {
	ps := append([]int32(nil), parts[topic]...)
	if len(ps) == 0 {
		return // franz-go also reports empty (no-op) assignment changes
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	m.mu.Lock()
	for _, p := range ps {
		if kind == "assigned" {
			m.assigned[p] = true
		} else {
			delete(m.assigned, p)
		}
	}
	m.mu.Unlock()
	m.evMu.Lock()
	*m.events = append(*m.events, fmt.Sprintf("%s %s %v", m.name, kind, ps))
	m.evMu.Unlock()
}

func (m *member) owned() map[int32]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int32]bool{}
	for p := range m.assigned {
		out[p] = true
	}
	return out
}

func groupRebalance(ctx context.Context, o *options, res result) error {
	res["protocol"] = o.protocol
	admCl, err := o.client()
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := o.ensureTopic(ctx, adm, o.topic); err != nil {
		return err
	}

	group := fmt.Sprintf("franz-grp-%s-%s", o.protocol, o.runID)
	res["group"] = group
	var events []string
	var evMu sync.Mutex
	newMember := func(name string) (*member, error) {
		m := &member{name: name, assigned: map[int32]bool{}, events: &events, evMu: &evMu}
		opts := []kgo.Opt{
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(o.topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			kgo.FetchMaxWait(500 * time.Millisecond),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, p map[string][]int32) { m.event("assigned", p, o.topic) }),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, p map[string][]int32) {
				m.event("revoked", p, o.topic)
				// Commit what was consumed before giving partitions away.
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					fmt.Fprintf(os.Stderr, "franz-scenario: %s: commit on revoke: %v\n", name, err)
				}
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, p map[string][]int32) { m.event("lost", p, o.topic) }),
		}
		if o.protocol == "consumer" {
			opts = append(opts, kgo.ServerSideBalancer())
		} else {
			opts = append(opts, kgo.HeartbeatInterval(1*time.Second), kgo.SessionTimeout(10*time.Second))
		}
		cl, err := o.client(opts...)
		m.cl = cl
		return m, err
	}
	waitFor := func(what string, cond func() bool) error {
		for !cond() {
			select {
			case <-ctx.Done():
				evMu.Lock()
				defer evMu.Unlock()
				return fmt.Errorf("timed out waiting for %s; assignment events so far: %v", what, events)
			case <-time.After(100 * time.Millisecond):
			}
		}
		return nil
	}
	// Poll loops keep the members fetching (and, for the classic protocol, let rebalances proceed).
	// Records are collected and verified against the delivery reports once everything is in.
	type got struct {
		owner string
		rec   *kgo.Record
	}
	var gotMu sync.Mutex
	var collected []got
	var pollWG sync.WaitGroup
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	var pollErrMu sync.Mutex
	var pollErr error
	startPolling := func(m *member) {
		pollWG.Add(1)
		go func() {
			defer pollWG.Done()
			for pollCtx.Err() == nil {
				pctx, pcancel := context.WithTimeout(pollCtx, time.Second)
				fs := m.cl.PollFetches(pctx)
				pcancel()
				if err := fetchErr(fs); err != nil {
					pollErrMu.Lock()
					if pollErr == nil {
						pollErr = fmt.Errorf("%s: %w", m.name, err)
					}
					pollErrMu.Unlock()
				}
				if fs.NumRecords() == 0 {
					continue
				}
				gotMu.Lock()
				fs.EachRecord(func(r *kgo.Record) { collected = append(collected, got{m.name, r}) })
				gotMu.Unlock()
				// Commit after every poll; retry transient commit failures (rebalance in progress,
				// stale member epoch right after an epoch bump).
				for attempt := 0; ; attempt++ {
					err := m.cl.CommitUncommittedOffsets(pollCtx)
					if err == nil || pollCtx.Err() != nil {
						break
					}
					if attempt >= 5 {
						pollErrMu.Lock()
						if pollErr == nil {
							pollErr = fmt.Errorf("%s: commit: %w", m.name, err)
						}
						pollErrMu.Unlock()
						break
					}
					fmt.Fprintf(os.Stderr, "franz-scenario: %s: commit failed (retrying): %v\n", m.name, err)
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
	}

	all := func(ps map[int32]bool) bool { return int32(len(ps)) == o.partitions }
	a, err := newMember("A")
	if err != nil {
		return err
	}
	defer a.cl.Close()
	startPolling(a)
	if err := waitFor("member A to own all partitions", func() bool { return all(a.owned()) }); err != nil {
		return err
	}

	b, err := newMember("B")
	if err != nil {
		return err
	}
	defer b.cl.Close()
	startPolling(b)
	split := func() bool {
		pa, pb := a.owned(), b.owned()
		if len(pa) == 0 || len(pb) == 0 {
			return false
		}
		for p := range pb {
			if pa[p] {
				return false
			}
			pa[p] = true
		}
		return all(pa)
	}
	if err := waitFor("partitions to be split between A and B", split); err != nil {
		return err
	}
	res["assignment_a"] = sortedParts(a.owned())
	res["assignment_b"] = sortedParts(b.owned())

	prod, err := o.client(kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return err
	}
	defer prod.Close()
	want, err := produce(ctx, prod, o.topic, makeRecords("grp-"+o.runID, o.records))
	if err != nil {
		return err
	}
	res["produced"] = len(want)

	// Until every record is consumed (and committed by the poll loops).
	v := newVerifier(want)
	verified := 0
	if err := waitFor("all records to be consumed", func() bool {
		gotMu.Lock()
		for _, g := range collected[verified:] {
			v.add(g.owner, g.rec)
		}
		verified = len(collected)
		gotMu.Unlock()
		pollErrMu.Lock()
		defer pollErrMu.Unlock()
		return v.done() || pollErr != nil
	}); err != nil {
		return fmt.Errorf("%w (consumed %d of %d)", err, v.count(), len(want))
	}
	pollErrMu.Lock()
	perr := pollErr
	pollErrMu.Unlock()
	if perr != nil {
		return perr
	}
	// Give the poll loops a moment to finish their final commits and catch stray duplicates.
	time.Sleep(1500 * time.Millisecond)
	stopPolling()
	pollWG.Wait()
	gotMu.Lock()
	for _, g := range collected[verified:] {
		v.add(g.owner, g.rec)
	}
	gotMu.Unlock()
	pollErrMu.Lock()
	perr = pollErr
	pollErrMu.Unlock()
	if perr != nil && ctx.Err() == nil {
		return perr
	}
	if err := v.check(); err != nil {
		return err
	}
	v.mu.Lock()
	res["consumed"] = len(v.seen)
	res["records"] = len(v.seen)
	res["foreign"] = v.foreign
	res["consumed_by"] = map[string]int{"A": v.perOwner["A"], "B": v.perOwner["B"]}
	bothConsumed := v.perOwner["A"] > 0 && v.perOwner["B"] > 0
	v.mu.Unlock()
	for _, m := range []*member{a, b} {
		if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
			return fmt.Errorf("%s: final commit: %w", m.name, err)
		}
	}
	if !bothConsumed {
		return failf("expected both members to consume records, got %v", res["consumed_by"])
	}

	// Committed offsets, seen through the admin API, must equal the log end offsets.
	ends, err := o.endOffsets(ctx, adm, o.topic)
	if err != nil {
		return err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("fetch committed offsets: %w", err)
	}
	var mismatches []string
	var total int64
	for _, p := range sortedParts(func() map[int32]bool {
		m := map[int32]bool{}
		for p := range ends {
			m[p] = true
		}
		return m
	}()) {
		end := ends[p]
		c, ok := committed.Lookup(o.topic, p)
		switch {
		case !ok:
			mismatches = append(mismatches, fmt.Sprintf("p%d: no committed offset (end %d)", p, end))
		case c.Err != nil:
			mismatches = append(mismatches, fmt.Sprintf("p%d: %v", p, c.Err))
		case c.At != end:
			mismatches = append(mismatches, fmt.Sprintf("p%d: committed %d, end %d", p, c.At, end))
		default:
			total += c.At
		}
	}
	if len(mismatches) > 0 {
		return failf("committed offsets do not match log end offsets: %v", mismatches)
	}
	res["committed_total"] = total

	// The group, as the coordinator sees it: two members, of the requested protocol.
	if o.protocol == "consumer" {
		dg, err := adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return fmt.Errorf("describe consumer group (KIP-848): %w", err)
		}
		g := dg[group]
		if g.Err != nil {
			return fmt.Errorf("describe consumer group (KIP-848): %w", g.Err)
		}
		res["group_state"] = g.State
		if len(g.Members) != 2 {
			return failf("KIP-848 group has %d members, expected 2", len(g.Members))
		}
	} else {
		dg, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return fmt.Errorf("describe group: %w", err)
		}
		g := dg[group]
		if g.Err != nil {
			return fmt.Errorf("describe group: %w", g.Err)
		}
		res["group_state"] = g.State
		if len(g.Members) != 2 || g.ProtocolType != "consumer" {
			return failf("classic group has %d members (protocol type %q), expected 2 consumers", len(g.Members), g.ProtocolType)
		}
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	if _, ok := listed[group]; !ok {
		return failf("group %s missing from ListGroups (%d groups listed)", group, len(listed))
	}

	evMu.Lock()
	res["events"] = append([]string(nil), events...)
	evMu.Unlock()
	if err := o.checkDiscovered("group-rebalance", admCl, prod, a.cl, b.cl); err != nil {
		return err
	}
	// Leave cleanly: B first, A must then own everything again (not checked: timing).
	b.cl.Close()
	a.cl.Close()
	return nil
}

func sortedParts(ps map[int32]bool) []int32 {
	out := make([]int32, 0, len(ps))
	for p := range ps {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func adminScenario(ctx context.Context, o *options, res result) error {
	cl, err := o.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// Cluster view: metadata and DescribeCluster.
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	addrs, err := o.checkBrokers("metadata", md.Brokers)
	res["broker_addrs"] = addrs
	res["brokers"] = len(md.Brokers)
	res["controller"] = md.Controller
	if err != nil {
		return err
	}
	if o.expectBrokers > 0 && len(md.Brokers) != o.expectBrokers {
		return failf("metadata reports %d brokers %v, expected %d", len(md.Brokers), addrs, o.expectBrokers)
	}
	dreq := kmsg.NewPtrDescribeClusterRequest()
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("describe cluster: %w", err)
	}
	if err := kerr.ErrorForCode(dresp.ErrorCode); err != nil {
		return fmt.Errorf("describe cluster: %w", err)
	}
	var dbrokers []kgo.BrokerMetadata
	for _, b := range dresp.Brokers {
		dbrokers = append(dbrokers, kgo.BrokerMetadata{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	daddrs, err := o.checkBrokers("describe cluster", dbrokers)
	res["describe_cluster_brokers"] = daddrs
	res["cluster_id"] = dresp.ClusterID
	if err != nil {
		return err
	}
	if o.expectBrokers > 0 && len(dbrokers) != o.expectBrokers {
		return failf("DescribeCluster reports %d brokers %v, expected %d", len(dbrokers), daddrs, o.expectBrokers)
	}

	// Topics: create two, see them listed, delete them, see them gone.
	t1, t2 := o.topic+"-a", o.topic+"-b"
	created, err := adm.CreateTopics(ctx, o.partitions, o.rf, nil, t1, t2)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, t := range []string{t1, t2} {
		r, ok := created[t]
		if !ok {
			return failf("create topics: no response for %s", t)
		}
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, r.Err)
		}
		if err := waitTopicReady(ctx, adm, t, o.partitions); err != nil {
			return err
		}
	}
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	for _, t := range []string{t1, t2} {
		if !listed.Has(t) {
			return failf("topic %s missing from ListTopics (%d topics listed)", t, len(listed))
		}
	}
	res["topics_created"] = 2
	res["topic_names"] = []string{t1, t2}

	// Groups: make one exist by committing an offset, then list (and describe) it.
	group := "franz-admin-" + o.runID
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: t1, Partition: 0, At: 0, LeaderEpoch: -1})
	cr, err := adm.CommitOffsets(ctx, group, offs)
	if err != nil {
		return fmt.Errorf("commit offsets for %s: %w", group, err)
	}
	if err := cr.Error(); err != nil {
		return fmt.Errorf("commit offsets for %s: %w", group, err)
	}
	var groups kadm.ListedGroups
	for {
		groups, err = adm.ListGroups(ctx)
		if err != nil {
			return fmt.Errorf("list groups: %w", err)
		}
		if _, ok := groups[group]; ok {
			break
		}
		select {
		case <-ctx.Done():
			return failf("group %s missing from ListGroups (%d groups listed)", group, len(groups))
		case <-time.After(200 * time.Millisecond):
		}
	}
	res["groups_listed"] = len(groups)
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("fetch offsets: %w", err)
	}
	if c, ok := fetched.Lookup(t1, 0); !ok || c.Err != nil || c.At != 0 {
		return failf("fetch offsets for %s: got %+v (present %v), want offset 0", group, c, ok)
	}
	dg, err := adm.DeleteGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	if err := dg.Error(); err != nil {
		return fmt.Errorf("delete group: %w", err)
	}

	deleted, err := adm.DeleteTopics(ctx, t1, t2)
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	if err := deleted.Error(); err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	for {
		listed, err = adm.ListTopics(ctx)
		if err == nil && !listed.Has(t1) && !listed.Has(t2) {
			break
		}
		select {
		case <-ctx.Done():
			return failf("deleted topics still listed (err %v)", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	res["topics_deleted"] = 2
	res["group"] = group
	return o.checkDiscovered("admin", cl)
}

func idempotent(ctx context.Context, o *options, res result) error {
	admCl, err := o.client()
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := o.ensureTopic(ctx, adm, o.topic); err != nil {
		return err
	}
	before, err := o.endOffsets(ctx, adm, o.topic)
	if err != nil {
		return err
	}

	// franz-go producers are idempotent by default (and then pipeline several produce requests per
	// broker on Kafka 1.0+); small batches make for many sequence numbers.
	prod, err := o.client(kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		return err
	}
	defer prod.Close()
	want, err := produce(ctx, prod, o.topic, makeRecords("idem-"+o.runID, o.records))
	if err != nil {
		return err
	}
	pid, epoch, err := prod.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("producer id: %w", err)
	}
	if pid < 0 {
		return failf("producer has no producer id (%d): idempotence not in effect", pid)
	}
	res["producer_id"] = pid
	res["producer_epoch"] = epoch
	res["produced"] = len(want)

	// The records of this run form one contiguous, gap-free range per partition.
	after, err := o.endOffsets(ctx, adm, o.topic)
	if err != nil {
		return err
	}
	perPart := map[int32][]int64{}
	for _, d := range want {
		perPart[d.partition] = append(perPart[d.partition], d.offset)
	}
	for p, offs := range perPart {
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		b, a := before[p], after[p]
		if offs[0] != b || a-b != int64(len(offs)) {
			return failf("partition %d: %d records at offsets %d..%d, but the log went from %d to %d", p, len(offs), offs[0], offs[len(offs)-1], b, a)
		}
		for i := 1; i < len(offs); i++ {
			if offs[i] != offs[i-1]+1 {
				return failf("partition %d: offsets not contiguous (%d then %d)", p, offs[i-1], offs[i])
			}
		}
	}

	cons, err := o.client(kgo.ConsumeTopics(o.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	defer cons.Close()
	v := newVerifier(want)
	if err := consumeAll(ctx, cons, "consumer", v); err != nil {
		return err
	}
	res["consumed"] = v.count()
	if err := v.check(); err != nil {
		return err
	}
	res["records"] = v.count()
	return o.checkDiscovered("idempotent", admCl, prod, cons)
}

func transactional(ctx context.Context, o *options, res result) error {
	admCl, err := o.client()
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := o.ensureTopic(ctx, adm, o.topic); err != nil {
		return err
	}

	txnID := "franz-txn-" + o.runID
	res["transactional_id"] = txnID
	prod, err := o.client(
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(30*time.Second),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return err
	}
	defer prod.Close()

	spread := func(recs []*kgo.Record) []*kgo.Record {
		for i, r := range recs {
			r.Partition = int32(i) % o.partitions
		}
		return recs
	}
	half := o.records / 2
	txn := func(name string, recs []*kgo.Record, commit kgo.TransactionEndTry) (map[string]delivered, error) {
		if err := prod.BeginTransaction(); err != nil {
			return nil, fmt.Errorf("%s: begin: %w", name, err)
		}
		d, err := produce(ctx, prod, o.topic, recs)
		if err != nil {
			_ = prod.EndTransaction(ctx, kgo.TryAbort)
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := prod.EndTransaction(ctx, commit); err != nil {
			return nil, fmt.Errorf("%s: end transaction: %w", name, err)
		}
		return d, nil
	}
	committed1, err := txn("txn 1 (commit)", spread(makeRecords("txc-"+o.runID, half)), kgo.TryCommit)
	if err != nil {
		return err
	}
	aborted, err := txn("txn 2 (abort)", spread(makeRecords("txa-"+o.runID, o.records-half)), kgo.TryAbort)
	if err != nil {
		return err
	}
	// A last committed transaction on every partition: seeing it proves a read_committed reader
	// went past the aborted range.
	committed2, err := txn("txn 3 (commit)", spread(makeRecords("txz-"+o.runID, int(o.partitions))), kgo.TryCommit)
	if err != nil {
		return err
	}
	want := map[string]delivered{}
	for k, d := range committed1 {
		want[k] = d
	}
	for k, d := range committed2 {
		want[k] = d
	}
	res["committed"] = len(want)
	res["aborted"] = len(aborted)

	// read_committed: exactly the committed records, none of the aborted ones.
	rc, err := o.client(kgo.ConsumeTopics(o.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	defer rc.Close()
	v := newVerifier(want)
	abortedSeen := 0
	for !v.done() {
		if ctx.Err() != nil {
			return fmt.Errorf("read_committed consumer: %w (have %d of %d)", ctx.Err(), v.count(), len(want))
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := rc.PollFetches(pctx)
		pcancel()
		if err := fetchErr(fs); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, bad := aborted[string(r.Key)]; bad {
				abortedSeen++
			}
			v.add("read_committed", r)
		})
	}
	res["read_committed_consumed"] = v.count()
	if abortedSeen > 0 {
		return failf("read_committed consumer saw %d aborted records", abortedSeen)
	}
	if err := v.check(); err != nil {
		return err
	}

	// read_uncommitted: sees the aborted records too (they really are in the log).
	all := map[string]delivered{}
	for k, d := range want {
		all[k] = d
	}
	for k, d := range aborted {
		all[k] = d
	}
	ru, err := o.client(kgo.ConsumeTopics(o.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	defer ru.Close()
	vu := newVerifier(all)
	if err := consumeAll(ctx, ru, "read_uncommitted", vu); err != nil {
		return err
	}
	res["read_uncommitted_consumed"] = vu.count()
	if err := vu.check(); err != nil {
		return err
	}
	return o.checkDiscovered("transactional", admCl, prod, rc, ru)
}

// leaderChange produces continuously (idempotent, acks=all, unlimited retries) to an RF=3 topic
// while the harness stops the leader of partition 0: it prints {"leader":N} once 300 records are
// acked, waits for "go" on stdin (sent once that broker is down), keeps producing until partition 0
// has taken --records-after/partitions acks of records produced after "go" (so from another
// leader), then checks that every record was acked, that each partition's log holds exactly the
// acked records (offsets 0..n-1: no duplicates, no gaps) and that a consumer reads every one of
// them back where its delivery report put it.
func leaderChange(ctx context.Context, o *options, res result) error {
	admCl, err := o.client()
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	minISR := "2"
	if _, err := adm.CreateTopic(ctx, o.partitions, o.rf, map[string]*string{"min.insync.replicas": &minISR}, o.topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", o.topic, err)
	}
	leader, err := o.waitFullISR(ctx, adm, o.topic)
	if err != nil {
		return err
	}
	res["old_leader"] = leader

	var (
		mu        sync.Mutex
		acked     = map[string]delivered{}
		sent      int
		failures  int
		firstErr  error
		p0AfterGo int
		dataLoss  []string
		goSeen    atomic.Bool
		stop      atomic.Bool
	)
	prod, err := o.client(
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(120*time.Second),
		kgo.ProduceRequestTimeout(10*time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.ProducerOnDataLossDetected(func(t string, p int32) {
			mu.Lock()
			dataLoss = append(dataLoss, fmt.Sprintf("%s[%d]", t, p))
			mu.Unlock()
		}),
	)
	if err != nil {
		return err
	}
	defer prod.Close()

	prefix := "lc-" + o.runID
	record := func(i int) *kgo.Record {
		return &kgo.Record{
			Topic:     o.topic,
			Partition: int32(i) % o.partitions,
			Key:       []byte(fmt.Sprintf("%s-k-%07d", prefix, i)),
			Value:     []byte(fmt.Sprintf("%s-v-%07d-%s", prefix, i, strings.Repeat("x", i%64))),
		}
	}
	var wg sync.WaitGroup // outstanding promises
	bgDone := make(chan struct{})
	go func() {
		defer close(bgDone)
		for i := 0; !stop.Load(); i++ {
			afterGo := goSeen.Load()
			wg.Add(1)
			mu.Lock()
			sent = i + 1
			mu.Unlock()
			prod.Produce(ctx, record(i), func(r *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures++
					if firstErr == nil {
						firstErr = fmt.Errorf("%s[%d] key %s: %w", r.Topic, r.Partition, r.Key, err)
					}
					return
				}
				acked[string(r.Key)] = delivered{string(r.Value), r.Partition, r.Offset}
				if afterGo && r.Partition == 0 {
					p0AfterGo++
				}
			})
			time.Sleep(2 * time.Millisecond)
		}
	}()
	waitFor := func(what string, cond func() bool) error {
		for {
			mu.Lock()
			ok, e, n, a, dl := cond(), firstErr, sent, len(acked), dataLoss
			mu.Unlock()
			switch {
			case ok:
				return nil
			case e != nil:
				return fmt.Errorf("send failed while waiting for %s: %w", what, e)
			case len(dl) > 0:
				return failf("data loss detected on %v while waiting for %s", dl, what)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s (sent %d, acked %d): %w", what, n, a, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	stopProducing := func() {
		stop.Store(true)
		select {
		case <-bgDone:
		case <-time.After(10 * time.Second):
		}
	}

	err = func() error {
		if err := waitFor("300 acks before the leader change", func() bool { return len(acked) >= 300 }); err != nil {
			return err
		}
		mu.Lock()
		res["acked_before_go"] = len(acked)
		mu.Unlock()
		fmt.Fprintf(os.Stdout, "{\"leader\":%d}\n", leader)
		lineCh := make(chan string, 1)
		go func() {
			line, err := bufio.NewReader(os.Stdin).ReadString('\n')
			if err != nil && line == "" {
				line = "<" + err.Error() + ">"
			}
			lineCh <- line
		}()
		select {
		case line := <-lineCh:
			if strings.TrimSpace(line) != "go" {
				return failf("expected 'go' on stdin, got %q", line)
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for 'go' on stdin: %w", ctx.Err())
		}
		goSeen.Store(true)
		goAt := time.Now()
		after := max(1, o.recordsAfter/int(o.partitions))
		if err := waitFor(fmt.Sprintf("%d partition 0 acks from the new leader", after), func() bool { return p0AfterGo >= after }); err != nil {
			return err
		}
		res["recovery_ms"] = time.Since(goAt).Milliseconds()
		return nil
	}()
	stopProducing()
	if err != nil {
		return err
	}
	select {
	case <-bgDone:
	default:
		return failf("producer goroutine did not stop")
	}
	if err := prod.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	wg.Wait()
	mu.Lock()
	want := make(map[string]delivered, len(acked))
	for k, d := range acked {
		want[k] = d
	}
	nSent, nFailed, fErr, dl := sent, failures, firstErr, dataLoss
	res["partition0_acked_after"] = p0AfterGo
	mu.Unlock()
	res["sent"] = nSent
	res["acked"] = len(want)
	if pid, epoch, err := prod.ProducerID(ctx); err == nil {
		res["producer_id"] = pid
		res["producer_epoch"] = epoch
	}
	if nFailed > 0 {
		return failf("%d of %d sends failed, first: %v", nFailed, nSent, fErr)
	}
	if len(dl) > 0 {
		return failf("franz-go detected data loss on %v", dl)
	}
	if len(want) != nSent {
		return failf("%d sent but %d acked", nSent, len(want))
	}

	// Partition 0 now has another leader, learned through the gateway.
	var last string
	for {
		md, err := adm.Metadata(ctx, o.topic)
		if err == nil {
			if _, err := o.checkBrokers("metadata after the change", md.Brokers); err != nil {
				return err
			}
			p0, ok := md.Topics[o.topic].Partitions[0]
			if ok && p0.Err == nil && p0.Leader >= 0 {
				if p0.Leader == leader {
					return failf("partition 0 is still led by stopped broker %d", leader)
				}
				res["new_leader"] = p0.Leader
				break
			}
			last = fmt.Sprintf("partition 0: leader %d, err %v", p0.Leader, p0.Err)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("partition 0 has no leader after the change: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}

	// Idempotence: each partition's log is exactly the acked records, offsets 0..n-1.
	perPart := map[int32][]int64{}
	for _, d := range want {
		perPart[d.partition] = append(perPart[d.partition], d.offset)
	}
	ends, err := o.endOffsets(ctx, adm, o.topic)
	if err != nil {
		return err
	}
	endList := make([]int64, o.partitions)
	for p := int32(0); p < o.partitions; p++ {
		endList[p] = ends[p]
	}
	res["end_offsets"] = endList
	for p := int32(0); p < o.partitions; p++ {
		offs := perPart[p]
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		for i, off := range offs {
			if off != int64(i) {
				return failf("partition %d: acked offsets are not 0..%d (duplicates or gaps; #%d is %d)", p, len(offs)-1, i, off)
			}
		}
		if ends[p] != int64(len(offs)) {
			return failf("partition %d: log end offset %d but %d records acked (duplicates in the log?)", p, ends[p], len(offs))
		}
	}

	cons, err := o.client(
		kgo.ConsumerGroup("franz-lc-"+o.runID),
		kgo.ConsumeTopics(o.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cons.Close()
	v := newVerifier(want)
	if err := consumeAll(ctx, cons, "consumer", v); err != nil {
		return err
	}
	res["consumed"] = v.count()
	res["foreign"] = v.foreign
	if err := v.check(); err != nil {
		return err
	}
	return o.checkDiscovered("leader-change", admCl, prod, cons)
}

// waitFullISR waits until every partition of topic has a leader and all replicas in sync; returns
// the leader of partition 0.
func (o *options) waitFullISR(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	var last string
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if _, err := o.checkBrokers("metadata", md.Brokers); err != nil {
				return -1, err
			}
			td, ok := md.Topics[topic]
			switch {
			case !ok:
				last = "topic missing from metadata"
			case td.Err != nil:
				last = td.Err.Error()
			case int32(len(td.Partitions)) != o.partitions:
				last = fmt.Sprintf("%d partitions", len(td.Partitions))
			default:
				var bad []string
				for _, p := range td.Partitions.Sorted() {
					if p.Err != nil || p.Leader < 0 || len(p.ISR) != int(o.rf) {
						bad = append(bad, fmt.Sprintf("p%d: leader %d, isr %v, err %v", p.Partition, p.Leader, p.ISR, p.Err))
					}
				}
				if len(bad) == 0 {
					return td.Partitions[0].Leader, nil
				}
				last = strings.Join(bad, "; ")
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("topic %s not ready (full ISR): %s", topic, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
