// Java (kafka-clients 4.x) scenario client for Sluice's integration tests.
//
//   java -cp scenario:libs/* Scenario <scenario> --bootstrap HOST:PORT [--topic T] [options]
//
// Each scenario checks its own results (every record by key, value, partition and offset) and prints
// exactly one JSON object on a line of stdout at the end: {"scenario":..,"ok":true,...} with exit
// status 0, or {"scenario":..,"ok":false,"error":".."} with a non-zero status (and the message on
// stderr). `leader-change` additionally prints {"leader":N} first and then waits for a line "go" on
// stdin (see there). A watchdog ends a scenario that runs past --timeout-ms with status 3.
//
// Scenarios: describe-cluster, produce-consume, group-rebalance, idempotent, transactional, admin,
// leader-change, and the policy scenarios (produce-expect, create-topic-expect, delete-topic-expect,
// client-id-expect, alter-config-expect, delete-records-expect, produce-rate, consume-rate).
// Compiled by tests/support/kafka-install.sh.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class Scenario {

    /** A failed check: the scenario prints it and exits 1. */
    static final class Fail extends RuntimeException {
        Fail(String msg) {
            super(msg);
        }
    }

    /** What the scenario is doing now: named by the watchdog when it fires. */
    static volatile String phase = "starting";

    static void phase(String what) {
        phase = what;
    }

    static void check(boolean cond, String fmt, Object... args) {
        if (!cond) {
            throw new Fail(String.format(fmt, args));
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Arguments

    final String scenario;
    final Map<String, String> opts = new HashMap<>();
    final String runId = UUID.randomUUID().toString().substring(0, 8);
    final Set<Integer> forbidPorts = new TreeSet<>();
    final long deadline;

    Scenario(String[] args) {
        if (args.length < 1) {
            throw new Fail("usage: Scenario <scenario> --bootstrap HOST:PORT [--topic T] [--key value ...]");
        }
        scenario = args[0];
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            check(a.startsWith("--") && i + 1 < args.length, "bad argument '%s' (expected --key value)", a);
            opts.put(a.substring(2), args[++i]);
        }
        check(opts.containsKey("bootstrap"), "--bootstrap is required");
        String fp = opts.getOrDefault("forbid-ports", "");
        for (String p : fp.split(",")) {
            if (!p.isBlank()) {
                forbidPorts.add(Integer.parseInt(p.trim()));
            }
        }
        deadline = System.currentTimeMillis() + longOpt("timeout-ms", 180_000);
    }

    String opt(String k, String dflt) {
        return opts.getOrDefault(k, dflt);
    }

    String topic() {
        String t = opts.get("topic");
        check(t != null, "--topic is required for %s", scenario);
        return t;
    }

    int intOpt(String k, int dflt) {
        return Integer.parseInt(opts.getOrDefault(k, Integer.toString(dflt)));
    }

    long longOpt(String k, long dflt) {
        return Long.parseLong(opts.getOrDefault(k, Long.toString(dflt)));
    }

    String bootstrap() {
        return opts.get("bootstrap");
    }

    long remainingMs() {
        long r = deadline - System.currentTimeMillis();
        check(r > 0, "scenario timed out");
        return r;
    }

    // ----------------------------------------------------------------------------------------------
    // Clients

    Properties common(String role) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap());
        p.put("client.id", opt("client-id-prefix", "sluice-it-") + scenario + "-" + role + "-" + runId);
        String mechanism = opt("sasl-mechanism", "");
        if (!mechanism.isEmpty()) {
            // SASL_PLAINTEXT with PLAIN or SCRAM-SHA-256/512 (KIP-43, KIP-84, KIP-152).
            String module = mechanism.equals("PLAIN")
                    ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                    : "org.apache.kafka.common.security.scram.ScramLoginModule";
            p.put("security.protocol", "SASL_PLAINTEXT");
            p.put("sasl.mechanism", mechanism);
            p.put("sasl.jaas.config", module + " required username=\"" + opt("sasl-username", "")
                    + "\" password=\"" + opt("sasl-password", "") + "\";");
        }
        return p;
    }

    Admin admin() {
        Properties p = common("admin");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG,
                Long.toString(Math.max(15_000, Math.min(60_000, deadline - System.currentTimeMillis()))));
        return Admin.create(p);
    }

    KafkaProducer<String, String> producer(String role, Properties extra) {
        Properties p = common(role);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.putAll(extra);
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    KafkaConsumer<String, String> consumer(String role, String group, Properties extra) {
        Properties p = common(role);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.putAll(extra);
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    static Properties props(String... kv) {
        Properties p = new Properties();
        for (int i = 0; i + 1 < kv.length; i += 2) {
            p.put(kv[i], kv[i + 1]);
        }
        return p;
    }

    void checkNode(Node n, String where) {
        check(n != null && !n.isEmpty(), "%s: missing node", where);
        check(!forbidPorts.contains(n.port()),
                "%s: node %d is advertised as %s:%d, a broker's own port (the client would bypass the gateway)",
                where, n.id(), n.host(), n.port());
    }

    // ----------------------------------------------------------------------------------------------
    // Topics

    /** Creates the topic if absent and waits until every partition has a leader and full ISR. */
    Map<Integer, TopicPartitionInfo> ensureTopic(Admin admin, String topic, int partitions, short rf,
            Map<String, String> configs) throws Exception {
        phase("creating topic " + topic);
        try {
            admin.createTopics(List.of(new NewTopic(topic, partitions, rf).configs(configs))).all().get();
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
                throw e;
            }
        }
        String last = "";
        phase("waiting for topic " + topic + " to be ready");
        while (remainingMs() > 0) {
            try {
                TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                Map<Integer, TopicPartitionInfo> out = new TreeMap<>();
                boolean ready = d.partitions().size() == partitions;
                for (TopicPartitionInfo pi : d.partitions()) {
                    out.put(pi.partition(), pi);
                    ready &= pi.leader() != null && !pi.leader().isEmpty() && pi.isr().size() == rf;
                }
                if (ready) {
                    for (TopicPartitionInfo pi : d.partitions()) {
                        checkNode(pi.leader(), "describeTopics " + topic + "-" + pi.partition() + " leader");
                        for (Node r : pi.replicas()) {
                            checkNode(r, "describeTopics " + topic + "-" + pi.partition() + " replica");
                        }
                    }
                    return out;
                }
                last = d.toString();
            } catch (ExecutionException e) {
                last = e.getCause().toString();
            }
            Thread.sleep(100);
        }
        throw new Fail("topic " + topic + " not ready: " + last);
    }

    // ----------------------------------------------------------------------------------------------
    // Records

    /** What the producer was told about a record: where it landed. */
    record Acked(String key, String value, int partition, long offset) {
    }

    String key(int i) {
        return runId + "-k" + i;
    }

    String value(String key) {
        return "value-of-" + key + "-" + "x".repeat(key.length() % 17);
    }

    /** Sends n records, record i to partition i % partitions, and waits for every ack. */
    List<Acked> produceAll(KafkaProducer<String, String> p, String topic, int n, int partitions, int from)
            throws Exception {
        phase("producing " + n + " records to " + topic);
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        List<String> keys = new ArrayList<>();
        for (int i = from; i < from + n; i++) {
            String k = key(i);
            keys.add(k);
            fs.add(p.send(new ProducerRecord<>(topic, i % partitions, k, value(k))));
        }
        p.flush();
        List<Acked> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            RecordMetadata m = fs.get(i).get(remainingMs(), TimeUnit.MILLISECONDS);
            int want = (from + i) % partitions;
            check(m.partition() == want, "record %s acked on partition %d, sent to %d", keys.get(i),
                    m.partition(), want);
            out.add(new Acked(keys.get(i), value(keys.get(i)), m.partition(), m.offset()));
        }
        return out;
    }

    /**
     * Compares consumed records with the acked ones: every acked record present exactly once, with its
     * value, partition and offset. Records of other runs (other key prefix) are ignored.
     */
    void verifyExactly(Collection<Acked> acked, Collection<ConsumerRecord<String, String>> got, String what) {
        Map<String, Acked> want = new HashMap<>();
        for (Acked a : acked) {
            want.put(a.key(), a);
        }
        Set<String> seen = new HashSet<>();
        for (ConsumerRecord<String, String> r : got) {
            if (r.key() == null || !r.key().startsWith(runId + "-")) {
                continue;
            }
            Acked a = want.get(r.key());
            check(a != null, "%s: consumed unexpected record key=%s partition=%d offset=%d", what, r.key(),
                    r.partition(), r.offset());
            check(seen.add(r.key()), "%s: record %s consumed twice", what, r.key());
            check(a.value().equals(r.value()), "%s: record %s has value '%s', produced '%s'", what, r.key(),
                    r.value(), a.value());
            check(a.partition() == r.partition(), "%s: record %s on partition %d, acked on %d", what, r.key(),
                    r.partition(), a.partition());
            check(a.offset() == r.offset(), "%s: record %s at offset %d, acked at %d", what, r.key(),
                    r.offset(), a.offset());
        }
        if (seen.size() != want.size()) {
            List<String> missing = new ArrayList<>();
            for (String k : want.keySet()) {
                if (!seen.contains(k) && missing.size() < 10) {
                    missing.add(k + "@" + want.get(k).partition() + "/" + want.get(k).offset());
                }
            }
            throw new Fail(String.format("%s: consumed %d of %d records; missing e.g. %s", what, seen.size(),
                    want.size(), missing));
        }
    }

    /** Consumes (assign mode, from the beginning) until `stop` says enough, or times out. */
    List<ConsumerRecord<String, String>> consumeUntil(KafkaConsumer<String, String> c,
            java.util.function.Predicate<List<ConsumerRecord<String, String>>> stop) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        phase("consuming");
        while (!stop.test(got)) {
            check(System.currentTimeMillis() < deadline, "timed out consuming: %d records so far", got.size());
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                got.add(r);
            }
        }
        return got;
    }

    static long countOurs(List<ConsumerRecord<String, String>> got, String prefix) {
        return got.stream().filter(r -> r.key() != null && r.key().startsWith(prefix)).count();
    }

    // ----------------------------------------------------------------------------------------------
    // Scenarios

    String describeCluster() throws Exception {
        int want = intOpt("wait-brokers", 0);
        phase("waiting for " + want + " brokers");
        try (Admin admin = admin()) {
            String last = "";
            while (true) {
                try {
                    DescribeClusterResult r = admin.describeCluster();
                    Collection<Node> nodes = r.nodes().get();
                    Node controller = r.controller().get();
                    if (nodes.size() >= want) {
                        StringBuilder b = new StringBuilder();
                        for (Node n : new TreeMap<>(toMap(nodes)).values()) {
                            checkNode(n, "describeCluster");
                            b.append(b.length() == 0 ? "" : ",").append(nodeJson(n));
                        }
                        return String.format("\"broker_count\":%d,\"controller\":%d,\"cluster_id\":\"%s\",\"brokers\":[%s]",
                                nodes.size(), controller == null ? -1 : controller.id(), r.clusterId().get(), b);
                    }
                    last = nodes.size() + " brokers: " + nodes;
                } catch (ExecutionException e) {
                    last = e.getCause().toString();
                }
                check(System.currentTimeMillis() < deadline, "cluster not ready (want %d brokers): %s", want, last);
                Thread.sleep(200);
            }
        }
    }

    static Map<Integer, Node> toMap(Collection<Node> nodes) {
        Map<Integer, Node> m = new TreeMap<>();
        for (Node n : nodes) {
            m.put(n.id(), n);
        }
        return m;
    }

    static String nodeJson(Node n) {
        return String.format("{\"id\":%d,\"host\":\"%s\",\"port\":%d}", n.id(), n.host(), n.port());
    }

    String produceConsume() throws Exception {
        String topic = topic();
        int partitions = intOpt("partitions", 6);
        short rf = (short) intOpt("rf", 3);
        int n = intOpt("records", 2000);
        int brokers = intOpt("brokers", 3);
        Set<Integer> leaders = new TreeSet<>();
        try (Admin admin = admin()) {
            Map<Integer, TopicPartitionInfo> parts = ensureTopic(admin, topic, partitions, rf, Map.of());
            for (TopicPartitionInfo pi : parts.values()) {
                leaders.add(pi.leader().id());
            }
            Set<Integer> all = toMap(admin.describeCluster().nodes().get()).keySet();
            check(all.size() == brokers, "describeCluster: %d brokers, expected %d", all.size(), brokers);
            check(leaders.equals(all), "partition leaders %s do not cover all brokers %s", leaders, all);
        }
        List<Acked> acked;
        try (KafkaProducer<String, String> p = producer("producer", props())) {
            acked = produceAll(p, topic, n, partitions, 0);
        }
        String group = "pc-" + runId;
        List<ConsumerRecord<String, String>> got;
        try (KafkaConsumer<String, String> c = consumer("consumer", group, props())) {
            c.subscribe(List.of(topic));
            got = consumeUntil(c, g -> countOurs(g, runId + "-") >= n);
            c.commitSync();
        }
        verifyExactly(acked, got, "produce-consume");
        return String.format("\"records\":%d,\"partitions\":%d,\"leaders\":%s", n, partitions, leaders);
    }

    /** One group member in its own thread: polls, records what it got, commits synchronously. */
    final class Member implements Runnable, ConsumerRebalanceListener {
        final String name;
        final KafkaConsumer<String, String> consumer;
        final Set<TopicPartition> assigned = ConcurrentHashMap.newKeySet();
        final AtomicInteger rebalances = new AtomicInteger();
        final List<ConsumerRecord<String, String>> got = Collections.synchronizedList(new ArrayList<>());
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicReference<Throwable> error = new AtomicReference<>();
        final AtomicInteger commits = new AtomicInteger();
        final String topic;
        final Thread thread;

        Member(String name, String group, String protocol, String topic) {
            this.name = name;
            this.topic = topic;
            Properties extra = props(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
            if (protocol.equals("classic")) {
                extra.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
                extra.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
            }
            this.consumer = consumer(name, group, extra);
            this.thread = new Thread(this, name);
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> ps) {
            assigned.removeAll(ps);
            // Commit what this member consumed before its partitions move on.
            if (!ps.isEmpty()) {
                consumer.commitSync();
                commits.incrementAndGet();
            }
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> ps) {
            assigned.addAll(ps);
            rebalances.incrementAndGet();
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> ps) {
            assigned.removeAll(ps);
        }

        @Override
        public void run() {
            try {
                consumer.subscribe(List.of(topic), this);
                while (!stop.get()) {
                    ConsumerRecords<String, String> rs = consumer.poll(Duration.ofMillis(100));
                    for (ConsumerRecord<String, String> r : rs) {
                        got.add(r);
                    }
                    if (!rs.isEmpty()) {
                        consumer.commitSync();
                        commits.incrementAndGet();
                    }
                }
                consumer.commitSync();
                commits.incrementAndGet();
            } catch (WakeupException e) {
                // closing
            } catch (Throwable t) {
                error.set(t);
            } finally {
                consumer.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(Duration.ofSeconds(10)));
            }
        }

        void checkAlive() {
            Throwable t = error.get();
            if (t != null) {
                throw new Fail(name + " failed: " + t);
            }
        }
    }

    void waitFor(String what, java.util.function.BooleanSupplier cond, Member... members) throws Exception {
        phase("waiting for " + what);
        while (!cond.getAsBoolean()) {
            for (Member m : members) {
                m.checkAlive();
            }
            check(System.currentTimeMillis() < deadline, "timed out waiting for %s", what);
            Thread.sleep(50);
        }
    }

    String groupRebalance() throws Exception {
        String topic = topic();
        String protocol = opt("protocol", "classic");
        check(protocol.equals("classic") || protocol.equals("consumer"), "--protocol must be classic or consumer");
        int partitions = intOpt("partitions", 6);
        int n = intOpt("records", 1000);
        String group = "rb-" + protocol + "-" + runId;
        Set<TopicPartition> allParts = new HashSet<>();
        for (int i = 0; i < partitions; i++) {
            allParts.add(new TopicPartition(topic, i));
        }
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, partitions, (short) intOpt("rf", 3), Map.of());

            Member a = new Member("member-a", group, protocol, topic);
            Member b = new Member("member-b", group, protocol, topic);
            try {
                a.thread.start();
                waitFor("member-a to own all partitions", () -> a.assigned.equals(allParts), a);
                int aBefore = a.rebalances.get();
                b.thread.start();
                waitFor("both members to own partitions", () -> {
                    Set<TopicPartition> u = new HashSet<>(a.assigned);
                    u.addAll(b.assigned);
                    boolean disjoint = Collections.disjoint(a.assigned, b.assigned);
                    return !a.assigned.isEmpty() && !b.assigned.isEmpty() && disjoint && u.equals(allParts);
                }, a, b);
                check(a.rebalances.get() > aBefore || a.assigned.size() < partitions,
                        "no rebalance observed on member-a");
                String aAssigned = new TreeSet<>(a.assigned.stream().map(TopicPartition::partition).toList()).toString();
                String bAssigned = new TreeSet<>(b.assigned.stream().map(TopicPartition::partition).toList()).toString();

                List<Acked> acked;
                try (KafkaProducer<String, String> p = producer("producer", props())) {
                    acked = produceAll(p, topic, n, partitions, 0);
                }
                waitFor("members to consume all records", () -> countOurs(snapshot(a.got), runId + "-")
                        + countOurs(snapshot(b.got), runId + "-") >= n, a, b);
                a.stop.set(true);
                b.stop.set(true);
                a.thread.join(30_000);
                b.thread.join(30_000);
                a.checkAlive();
                b.checkAlive();
                check(!a.thread.isAlive() && !b.thread.isAlive(), "members did not stop");

                List<ConsumerRecord<String, String>> union = new ArrayList<>(a.got);
                union.addAll(b.got);
                verifyExactly(acked, union, "group-rebalance");
                check(countOurs(a.got, runId + "-") > 0 && countOurs(b.got, runId + "-") > 0,
                        "one member consumed nothing (a=%d, b=%d)", a.got.size(), b.got.size());

                // Committed offsets: each partition's end (last acked offset + 1).
                Map<TopicPartition, Long> end = new HashMap<>();
                for (Acked x : acked) {
                    end.merge(new TopicPartition(topic, x.partition()), x.offset() + 1, Math::max);
                }
                Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
                        .partitionsToOffsetAndMetadata().get();
                for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
                    OffsetAndMetadata o = committed.get(e.getKey());
                    check(o != null && o.offset() == e.getValue(), "committed offset of %s is %s, expected %d",
                            e.getKey(), o, e.getValue());
                }
                ConsumerGroupDescription gd = admin.describeConsumerGroups(List.of(group)).describedGroups()
                        .get(group).get();
                checkNode(gd.coordinator(), "describeConsumerGroups coordinator");
                return String.format("\"protocol\":\"%s\",\"records\":%d,\"member_a\":{\"partitions\":%s,\"records\":%d,\"commits\":%d},"
                        + "\"member_b\":{\"partitions\":%s,\"records\":%d,\"commits\":%d},\"coordinator\":%d",
                        protocol, n, aAssigned, a.got.size(), a.commits.get(), bAssigned, b.got.size(),
                        b.commits.get(), gd.coordinator().id());
            } finally {
                a.stop.set(true);
                b.stop.set(true);
                a.consumer.wakeup();
                b.consumer.wakeup();
            }
        }
    }

    static List<ConsumerRecord<String, String>> snapshot(List<ConsumerRecord<String, String>> l) {
        synchronized (l) {
            return new ArrayList<>(l);
        }
    }

    String idempotent() throws Exception {
        String topic = topic();
        int partitions = intOpt("partitions", 6);
        int n = intOpt("records", 2000);
        List<Acked> acked;
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, partitions, (short) intOpt("rf", 3), Map.of());
        }
        Properties extra = props(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true",
                ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5",
                ProducerConfig.RETRIES_CONFIG, Integer.toString(Integer.MAX_VALUE));
        try (KafkaProducer<String, String> p = producer("producer", extra)) {
            acked = produceAll(p, topic, n, partitions, 0);
        }
        // Per partition, offsets of one producer's records must be dense: no duplicate, no gap.
        Map<Integer, List<Long>> offs = new TreeMap<>();
        for (Acked a : acked) {
            offs.computeIfAbsent(a.partition(), k -> new ArrayList<>()).add(a.offset());
        }
        for (Map.Entry<Integer, List<Long>> e : offs.entrySet()) {
            List<Long> l = e.getValue();
            for (int i = 1; i < l.size(); i++) {
                check(l.get(i) == l.get(i - 1) + 1, "partition %d: offsets not dense: %d after %d", e.getKey(),
                        l.get(i), l.get(i - 1));
            }
        }
        List<ConsumerRecord<String, String>> got;
        try (KafkaConsumer<String, String> c = consumer("consumer", "idem-" + runId, props())) {
            c.subscribe(List.of(topic));
            got = consumeUntil(c, g -> countOurs(g, runId + "-") >= n);
        }
        verifyExactly(acked, got, "idempotent");
        return String.format("\"records\":%d", n);
    }

    String transactional() throws Exception {
        String topic = topic();
        int partitions = intOpt("partitions", 6);
        int n = intOpt("records", 600);
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, partitions, (short) intOpt("rf", 3), Map.of());
        }
        List<Acked> committed = new ArrayList<>();
        List<Acked> aborted = new ArrayList<>();
        Properties extra = props(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "tx-" + runId,
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        try (KafkaProducer<String, String> p = producer("tx-producer", extra)) {
            p.initTransactions();
            p.beginTransaction();
            committed.addAll(produceAll(p, topic, n, partitions, 0));
            p.commitTransaction();
            p.beginTransaction();
            aborted.addAll(produceAll(p, topic, n, partitions, n));
            p.abortTransaction();
            p.beginTransaction();
            committed.addAll(produceAll(p, topic, n, partitions, 2 * n));
            p.commitTransaction();
        }
        Set<String> abortedKeys = new HashSet<>();
        for (Acked a : aborted) {
            abortedKeys.add(a.key());
        }
        // read_committed: exactly the committed records, none of the aborted ones.
        List<ConsumerRecord<String, String>> rc;
        try (KafkaConsumer<String, String> c = consumer("rc-consumer", "txrc-" + runId,
                props(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"))) {
            c.subscribe(List.of(topic));
            rc = consumeUntil(c, g -> countOurs(g, runId + "-") >= committed.size()
                    || g.stream().anyMatch(r -> abortedKeys.contains(r.key())));
            // Drain to the end (the last stable offset) to be sure nothing aborted follows.
            Set<TopicPartition> tps = c.assignment();
            Map<TopicPartition, Long> endOffsets = c.endOffsets(tps);
            while (true) {
                boolean atEnd = true;
                for (TopicPartition tp : tps) {
                    atEnd &= c.position(tp) >= endOffsets.get(tp);
                }
                if (atEnd) {
                    break;
                }
                check(System.currentTimeMillis() < deadline, "timed out draining read_committed consumer");
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    rc.add(r);
                }
            }
        }
        for (ConsumerRecord<String, String> r : rc) {
            check(!abortedKeys.contains(r.key()), "read_committed consumer saw aborted record %s", r.key());
        }
        verifyExactly(committed, rc, "transactional read_committed");
        // read_uncommitted sees the aborted records too (so the abort really wrote something).
        List<Acked> all = new ArrayList<>(committed);
        all.addAll(aborted);
        List<ConsumerRecord<String, String>> ru;
        try (KafkaConsumer<String, String> c = consumer("ru-consumer", "txru-" + runId,
                props(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_uncommitted"))) {
            c.subscribe(List.of(topic));
            ru = consumeUntil(c, g -> countOurs(g, runId + "-") >= all.size());
        }
        verifyExactly(all, ru, "transactional read_uncommitted");
        return String.format("\"committed\":%d,\"aborted\":%d", committed.size(), aborted.size());
    }

    String adminScenario() throws Exception {
        String base = topic();
        int brokers = intOpt("brokers", 3);
        List<String> topics = List.of(base + "-a", base + "-b");
        String group = "adm-" + runId;
        try (Admin admin = admin()) {
            Collection<Node> nodes = admin.describeCluster().nodes().get();
            check(nodes.size() == brokers, "describeCluster: %d brokers, expected %d", nodes.size(), brokers);
            for (Node n : nodes) {
                checkNode(n, "describeCluster");
            }
            Node controller = admin.describeCluster().controller().get();
            if (controller != null && !controller.isEmpty()) {
                checkNode(controller, "describeCluster controller");
            }
            checkQuorumAndBrokerConfigs(admin, nodes.iterator().next());
            List<NewTopic> nts = new ArrayList<>();
            for (String t : topics) {
                nts.add(new NewTopic(t, 3, (short) 3));
            }
            admin.createTopics(nts).all().get();
            for (String t : topics) {
                ensureTopic(admin, t, 3, (short) 3, Map.of());
            }
            Set<String> listed = admin.listTopics().names().get();
            check(listed.containsAll(topics), "listTopics %s lacks %s", listed, topics);

            // A group exists once it committed an offset.
            try (KafkaConsumer<String, String> c = consumer("committer", group, props())) {
                TopicPartition tp = new TopicPartition(topics.get(0), 0);
                c.assign(List.of(tp));
                c.commitSync(Map.of(tp, new OffsetAndMetadata(0L, "sluice-it")));
            }
            Set<String> groups = new HashSet<>();
            for (GroupListing g : admin.listGroups().all().get()) {
                groups.add(g.groupId());
            }
            check(groups.contains(group), "listGroups %s lacks %s", groups, group);
            Map<TopicPartition, OffsetAndMetadata> offs = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get();
            OffsetAndMetadata o = offs.get(new TopicPartition(topics.get(0), 0));
            check(o != null && o.offset() == 0L && "sluice-it".equals(o.metadata()),
                    "committed offset read back as %s", o);
            ConsumerGroupDescription gd = admin.describeConsumerGroups(List.of(group)).describedGroups().get(group)
                    .get();
            checkNode(gd.coordinator(), "describeConsumerGroups coordinator");

            admin.deleteTopics(topics).all().get();
            while (true) {
                Set<String> now = admin.listTopics().names().get();
                if (Collections.disjoint(now, topics)) {
                    break;
                }
                check(System.currentTimeMillis() < deadline, "deleted topics still listed: %s", now);
                Thread.sleep(100);
            }
            return String.format("\"brokers\":%d,\"topics_created\":%d,\"group\":\"%s\"", nodes.size(),
                    topics.size(), group);
        }
    }

    /**
     * DescribeQuorum (KIP-853 controller endpoints) and a broker's DescribeConfigs (its listeners)
     * may carry addresses too: no forbidden port may appear in either. Through Sluice (forbid-ports
     * given) the broker's listeners must read as sensitive with no value, while its other configs
     * keep theirs.
     */
    void checkQuorumAndBrokerConfigs(Admin admin, Node broker) throws Exception {
        org.apache.kafka.clients.admin.QuorumInfo quorum = admin.describeMetadataQuorum().quorumInfo().get();
        check(quorum.leaderId() >= 0, "describeMetadataQuorum: no leader (%s)", quorum);
        for (org.apache.kafka.clients.admin.QuorumInfo.Node n : quorum.nodes().values()) {
            for (org.apache.kafka.clients.admin.RaftVoterEndpoint e : n.endpoints()) {
                check(!forbidPorts.contains(e.port()),
                        "describeMetadataQuorum: node %d lists endpoint %s:%d, a broker's own port",
                        n.nodeId(), e.host(), e.port());
            }
        }
        org.apache.kafka.common.config.ConfigResource res = new org.apache.kafka.common.config.ConfigResource(
                org.apache.kafka.common.config.ConfigResource.Type.BROKER, Integer.toString(broker.id()));
        org.apache.kafka.clients.admin.Config cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
        for (org.apache.kafka.clients.admin.ConfigEntry e : cfg.entries()) {
            String value = e.value() == null ? "" : e.value();
            for (int port : forbidPorts) {
                check(!value.contains(":" + port), "describeConfigs(broker %d): %s = %s names a broker's own port",
                        broker.id(), e.name(), value);
            }
        }
        org.apache.kafka.clients.admin.ConfigEntry listeners = cfg.get("listeners");
        org.apache.kafka.clients.admin.ConfigEntry threads = cfg.get("num.network.threads");
        check(threads != null && threads.value() != null, "describeConfigs(broker %d): num.network.threads %s",
                broker.id(), threads);
        if (!forbidPorts.isEmpty()) {
            check(listeners != null && listeners.value() == null && listeners.isSensitive(),
                    "describeConfigs(broker %d): listeners should be withheld, got %s", broker.id(), listeners);
        }
    }

    /**
     * Produces continuously while the harness stops the leader of partition 0: prints {"leader":N},
     * waits for "go" on stdin (sent once that broker is down), keeps producing until partition 0 has
     * taken new acks from another leader, then checks that every acked record can be consumed.
     */
    String leaderChange() throws Exception {
        String topic = topic();
        int partitions = intOpt("partitions", 3);
        int afterGo = intOpt("records-after", 300);
        List<Acked> acked = Collections.synchronizedList(new ArrayList<>());
        AtomicReference<Exception> sendError = new AtomicReference<>();
        AtomicInteger failures = new AtomicInteger();
        AtomicInteger p0AckedSinceGo = new AtomicInteger();
        AtomicBoolean goSeen = new AtomicBoolean();
        AtomicBoolean stop = new AtomicBoolean();
        int leader;
        try (Admin admin = admin()) {
            Map<Integer, TopicPartitionInfo> parts = ensureTopic(admin, topic, partitions, (short) 3,
                    Map.of("min.insync.replicas", "2"));
            leader = parts.get(0).leader().id();
        }
        Properties extra = props(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true",
                ProducerConfig.RETRIES_CONFIG, Integer.toString(Integer.MAX_VALUE),
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000",
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000",
                ProducerConfig.RETRY_BACKOFF_MS_CONFIG, "100");
        KafkaProducer<String, String> p = producer("producer", extra);
        AtomicInteger sent = new AtomicInteger();
        Thread bg = new Thread(() -> {
            int i = 0;
            while (!stop.get()) {
                String k = key(i);
                int part = i % partitions;
                boolean afterGoFlag = goSeen.get();
                p.send(new ProducerRecord<>(topic, part, k, value(k)), (m, e) -> {
                    if (e != null) {
                        failures.incrementAndGet();
                        sendError.compareAndSet(null, e);
                    } else {
                        acked.add(new Acked(k, value(k), m.partition(), m.offset()));
                        if (afterGoFlag && m.partition() == 0) {
                            p0AckedSinceGo.incrementAndGet();
                        }
                    }
                });
                i++;
                sent.set(i);
                try {
                    Thread.sleep(2);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }, "producer");
        bg.start();
        try {
            waitForCount("acks before the leader change", () -> acked.size() >= 300, sendError);
            System.out.println("{\"leader\":" + leader + "}");
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line = in.readLine();
            check("go".equals(line == null ? null : line.trim()), "expected 'go' on stdin, got %s", line);
            goSeen.set(true);
            waitForCount("partition 0 acks from the new leader",
                    () -> p0AckedSinceGo.get() >= afterGo / partitions, sendError);
        } finally {
            stop.set(true);
            bg.join(10_000);
            p.flush();
            p.close(Duration.ofSeconds(30));
        }
        check(failures.get() == 0, "%d sends failed, first: %s", failures.get(), sendError.get());
        check(acked.size() == sent.get(), "%d sent but %d acked", sent.get(), acked.size());
        int newLeader;
        try (Admin admin = admin()) {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            Node l = d.partitions().get(0).leader();
            check(l != null && !l.isEmpty(), "partition 0 has no leader after the change");
            checkNode(l, "describeTopics leader after change");
            newLeader = l.id();
            check(newLeader != leader, "partition 0 is still led by stopped broker %d", leader);
        }
        List<Acked> all = snapshotAcked(acked);
        List<ConsumerRecord<String, String>> got;
        try (KafkaConsumer<String, String> c = consumer("consumer", "lc-" + runId, props())) {
            c.subscribe(List.of(topic));
            got = consumeUntil(c, g -> countOurs(g, runId + "-") >= all.size());
        }
        verifyExactly(all, got, "leader-change");
        return String.format("\"old_leader\":%d,\"new_leader\":%d,\"acked\":%d,\"partition0_acked_after\":%d", leader,
                newLeader, all.size(), p0AckedSinceGo.get());
    }

    static List<Acked> snapshotAcked(List<Acked> l) {
        synchronized (l) {
            return new ArrayList<>(l);
        }
    }

    void waitForCount(String what, java.util.function.BooleanSupplier cond, AtomicReference<Exception> err)
            throws Exception {
        phase("waiting for " + what);
        while (!cond.getAsBoolean()) {
            Exception e = err.get();
            if (e != null) {
                throw new Fail("send failed while waiting for " + what + ": " + e);
            }
            check(System.currentTimeMillis() < deadline, "timed out waiting for %s", what);
            Thread.sleep(20);
        }
    }



    /**
     * Produces --records with --producer-props (k=v;k=v) and checks every send against --expect:
     * "ok" (all acked) or an exception's simple class name (every send fails with it, and its
     * message names the Sluice policy).
     */
    String produceExpect() throws Exception {
        String topic = topic();
        int n = intOpt("records", 20);
        String expect = opt("expect", "ok");
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, 3, (short) 3, Map.of());
        }
        Properties extra = new Properties();
        for (String kv : opt("producer-props", "").split(";")) {
            if (!kv.isBlank()) {
                String[] p = kv.split("=", 2);
                extra.put(p[0].trim(), p[1].trim());
            }
        }
        extra.putIfAbsent(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "20000");
        extra.putIfAbsent(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        try (KafkaProducer<String, String> p = producer("producer", extra)) {
            for (int i = 0; i < n; i++) {
                String k = key(i);
                fs.add(p.send(new ProducerRecord<>(topic, i % 3, k, value(k))));
            }
            p.flush();
        }
        int ok = 0;
        Set<String> errors = new TreeSet<>();
        String message = "";
        for (Future<RecordMetadata> f : fs) {
            try {
                f.get(remainingMs(), TimeUnit.MILLISECONDS);
                ok++;
            } catch (ExecutionException e) {
                errors.add(e.getCause().getClass().getSimpleName());
                message = String.valueOf(e.getCause().getMessage());
            }
        }
        if (expect.equals("ok")) {
            check(ok == n, "%d of %d records acked; errors %s: %s", ok, n, errors, message);
        } else {
            check(ok == 0, "%d of %d records acked, expected all to fail with %s", ok, n, expect);
            check(errors.equals(Set.of(expect)), "errors %s, expected %s", errors, expect);
            String want = opt("message-contains", "Sluice policy");
            check(message.contains(want), "error message does not contain '%s': %s", want, message);
        }
        return String.format("\"acked\":%d,\"errors\":\"%s\",\"message\":%s", ok, errors, jsonString(message));
    }


    /**
     * Two producers at once for --seconds: "fast" sends --value-bytes records as fast as it can
     * (acks=all), "slow" sends 20 records a second. Reports fast's acked bytes per second after
     * --warmup-s, both producers' throttle-time metrics and slow's worst send-to-ack latency,
     * then reads every acked record back and checks it (nothing lost).
     */
    String produceRate() throws Exception {
        String topic = topic();
        // The slow producer writes to --slow-topic when given (per-topic quotas), else to --topic.
        String slowTopic = opt("slow-topic", topic);
        int partitions = 3;
        long seconds = longOpt("seconds", 8);
        long warmupMs = longOpt("warmup-s", 2) * 1000;
        int valueBytes = intOpt("value-bytes", 4096);
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, partitions, (short) 3, Map.of());
            ensureTopic(admin, slowTopic, partitions, (short) 3, Map.of());
        }
        String pad = "x".repeat(valueBytes);
        List<Acked> acked = Collections.synchronizedList(new ArrayList<>());
        List<Acked> slowAcked = Collections.synchronizedList(new ArrayList<>());
        AtomicReference<Exception> sendError = new AtomicReference<>();
        java.util.concurrent.atomic.AtomicLong windowBytes = new java.util.concurrent.atomic.AtomicLong();
        java.util.concurrent.atomic.AtomicLong slowWorstMs = new java.util.concurrent.atomic.AtomicLong();
        long start = System.currentTimeMillis();
        long windowStart = start + warmupMs;
        long end = start + seconds * 1000;
        double fastThrottleMax;
        double slowThrottleMax;
        // A buffer of ~8 s at the quota: always data for every partition, and what is still
        // queued at the end drains in a few seconds.
        try (KafkaProducer<String, String> fast = producer("fast", props("buffer.memory", "4194304"));
                KafkaProducer<String, String> slow = producer("slow", props())) {
            Thread slowThread = new Thread(() -> {
                int i = 0;
                while (System.currentTimeMillis() < end && sendError.get() == null) {
                    String k = key(1_000_000 + i++);
                    long sentAt = System.currentTimeMillis();
                    String v = value(k);
                    slow.send(new ProducerRecord<>(slowTopic, i % partitions, k, v), (m, e) -> {
                        if (e != null) {
                            sendError.compareAndSet(null, e);
                            return;
                        }
                        (slowTopic.equals(topic) ? acked : slowAcked).add(new Acked(k, v, m.partition(), m.offset()));
                        slowWorstMs.accumulateAndGet(System.currentTimeMillis() - sentAt, Math::max);
                    });
                    try {
                        Thread.sleep(50);
                    } catch (InterruptedException ie) {
                        return;
                    }
                }
            }, "slow");
            slowThread.start();
            phase("producing as fast as possible for " + seconds + " s");
            int i = 0;
            while (System.currentTimeMillis() < end && sendError.get() == null) {
                String k = key(i++);
                String v = k + pad;
                fast.send(new ProducerRecord<>(topic, i % partitions, k, v), (m, e) -> {
                    if (e != null) {
                        sendError.compareAndSet(null, e);
                        return;
                    }
                    acked.add(new Acked(k, v, m.partition(), m.offset()));
                    long now = System.currentTimeMillis();
                    if (now >= windowStart && now < end) {
                        windowBytes.addAndGet(k.length() + v.length());
                    }
                });
            }
            slowThread.join(10_000);
            fast.flush();
            slow.flush();
            check(sendError.get() == null, "send failed: %s", sendError.get());
            fastThrottleMax = clientMetric2(fast.metrics(), "produce-throttle-time-max");
            slowThrottleMax = clientMetric2(slow.metrics(), "produce-throttle-time-max");
        }
        double rate = windowBytes.get() * 1000.0 / (end - windowStart);
        List<Acked> all = new ArrayList<>(acked);
        try (KafkaConsumer<String, String> c = consumer("verify", null, props())) {
            c.assign(partitionsOf(topic, partitions));
            c.seekToBeginning(c.assignment());
            List<ConsumerRecord<String, String>> got = consumeUntil(c, g -> countOurs(g, runId + "-") >= all.size());
            verifyExactly(all, got, "produce-rate");
        }
        if (!slowTopic.equals(topic)) {
            List<Acked> slowAll = new ArrayList<>(slowAcked);
            try (KafkaConsumer<String, String> c = consumer("verify-slow", null, props())) {
                c.assign(partitionsOf(slowTopic, partitions));
                c.seekToBeginning(c.assignment());
                List<ConsumerRecord<String, String>> got = consumeUntil(c, g -> countOurs(g, runId + "-") >= slowAll.size());
                verifyExactly(slowAll, got, "produce-rate (slow topic)");
            }
            all.addAll(slowAll);
        }
        return String.format("\"records\":%d,\"fast_bytes_per_s\":%.0f,\"fast_throttle_max_ms\":%.0f,\"slow_throttle_max_ms\":%.0f,\"slow_worst_ack_ms\":%d",
                all.size(), rate, fastThrottleMax, slowThrottleMax, slowWorstMs.get());
    }

    /** A producer-metrics value (max over the group, NaN-safe). */
    static double clientMetric2(Map<MetricName, ? extends Metric> metrics, String name) {
        double v = 0;
        for (Map.Entry<MetricName, ? extends Metric> e : metrics.entrySet()) {
            if (e.getKey().name().equals(name) && e.getKey().group().equals("producer-metrics")) {
                Object o = e.getValue().metricValue();
                if (o instanceof Number num && !Double.isNaN(num.doubleValue())) {
                    v = Math.max(v, num.doubleValue());
                }
            }
        }
        return v;
    }


    /**
     * Creates --topic, then deletes it and checks the outcome against --expect: "ok", or the
     * simple class name of the exception the deletion must fail with.
     */
    String deleteTopicExpect() throws Exception {
        String topic = topic();
        String expect = opt("expect", "ok");
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, 1, (short) 1, Map.of());
            String outcome;
            try {
                admin.deleteTopics(List.of(topic)).all().get(remainingMs(), TimeUnit.MILLISECONDS);
                outcome = "ok";
            } catch (ExecutionException e) {
                outcome = e.getCause().getClass().getSimpleName();
                phase("delete failed: " + e.getCause());
            }
            check(outcome.equals(expect), "deleteTopics: %s, expected %s", outcome, expect);
            return String.format("\"outcome\":\"%s\"", outcome);
        }
    }


    /**
     * Creates --topic with --partitions, --rf and --configs (k=v;k=v) and checks the outcome
     * against --expect: "ok", or the simple class name of the exception the creation must fail
     * with (whose message must then name the Sluice policy).
     */
    String createTopicExpect() throws Exception {
        String topic = topic();
        String expect = opt("expect", "ok");
        Map<String, String> configs = new TreeMap<>();
        for (String kv : opt("configs", "").split(";")) {
            if (!kv.isBlank()) {
                String[] p = kv.split("=", 2);
                configs.put(p[0].trim(), p[1].trim());
            }
        }
        NewTopic nt = new NewTopic(topic, intOpt("partitions", 3), (short) intOpt("rf", 3)).configs(configs);
        try (Admin admin = admin()) {
            String outcome;
            String message = "";
            try {
                admin.createTopics(List.of(nt)).all().get(remainingMs(), TimeUnit.MILLISECONDS);
                outcome = "ok";
            } catch (ExecutionException e) {
                outcome = e.getCause().getClass().getSimpleName();
                message = String.valueOf(e.getCause().getMessage());
            }
            check(outcome.equals(expect), "createTopics: %s (%s), expected %s", outcome, message, expect);
            if (!expect.equals("ok")) {
                check(message.contains("Sluice policy"), "error message does not name the policy: %s", message);
            }
            return String.format("\"outcome\":\"%s\",\"message\":%s", outcome, jsonString(message));
        }
    }


    /**
     * An admin client (client id from --client-id-prefix) asks for the cluster's nodes and checks
     * the outcome against --expect: "ok", or the simple class name of the exception the call must
     * fail with (a gateway that refuses the client id answers ApiVersions with an error: the
     * client disconnects, retries, and the call times out after --api-timeout-ms).
     */
    String clientIdExpect() throws Exception {
        String expect = opt("expect", "ok");
        Properties p = common("admin");
        String apiTimeout = opt("api-timeout-ms", expect.equals("ok") ? "30000" : "8000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, apiTimeout);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, apiTimeout);
        String outcome;
        String message = "";
        int nodes = 0;
        try (Admin admin = Admin.create(p)) {
            try {
                nodes = admin.describeCluster().nodes().get(remainingMs(), TimeUnit.MILLISECONDS).size();
                outcome = "ok";
            } catch (ExecutionException e) {
                outcome = e.getCause().getClass().getSimpleName();
                message = String.valueOf(e.getCause().getMessage());
            }
        }
        check(outcome.equals(expect), "describeCluster: %s (%s), expected %s", outcome, message, expect);
        return String.format("\"outcome\":\"%s\",\"nodes\":%d,\"message\":%s", outcome, nodes, jsonString(message));
    }

    /**
     * Creates --topic, sets --configs (k=v;k=v) on it with IncrementalAlterConfigs (SET) and checks
     * the outcome against --expect: "ok" (every value is then read back with DescribeConfigs), or
     * the simple class name of the exception the change must fail with (whose message must then
     * name the Sluice policy).
     */
    String alterConfigExpect() throws Exception {
        String topic = topic();
        String expect = opt("expect", "ok");
        org.apache.kafka.clients.admin.AlterConfigOp.OpType opType =
                org.apache.kafka.clients.admin.AlterConfigOp.OpType.valueOf(opt("op", "SET"));
        List<org.apache.kafka.clients.admin.AlterConfigOp> ops = new ArrayList<>();
        Map<String, String> want = new TreeMap<>();
        for (String kv : opt("configs", "").split(";")) {
            if (!kv.isBlank()) {
                String[] p = kv.split("=", 2);
                want.put(p[0].trim(), p[1].trim());
                ops.add(new org.apache.kafka.clients.admin.AlterConfigOp(
                        new org.apache.kafka.clients.admin.ConfigEntry(p[0].trim(), p[1].trim()), opType));
            }
        }
        org.apache.kafka.common.config.ConfigResource res = new org.apache.kafka.common.config.ConfigResource(
                org.apache.kafka.common.config.ConfigResource.Type.TOPIC, topic);
        // --also-topic T --also-configs k=v: a second resource in the same request, whose outcome
        // must be --also-expect (with its message containing --also-message when it fails).
        String also = opt("also-topic", null);
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, 1, (short) 3, Map.of());
            Map<org.apache.kafka.common.config.ConfigResource, Collection<org.apache.kafka.clients.admin.AlterConfigOp>> req =
                    new HashMap<>();
            req.put(res, ops);
            org.apache.kafka.common.config.ConfigResource alsoRes = null;
            if (also != null) {
                ensureTopic(admin, also, 1, (short) 3, Map.of());
                alsoRes = new org.apache.kafka.common.config.ConfigResource(
                        org.apache.kafka.common.config.ConfigResource.Type.TOPIC, also);
                List<org.apache.kafka.clients.admin.AlterConfigOp> alsoOps = new ArrayList<>();
                for (String kv : opt("also-configs", "").split(";")) {
                    if (!kv.isBlank()) {
                        String[] p = kv.split("=", 2);
                        alsoOps.add(new org.apache.kafka.clients.admin.AlterConfigOp(
                                new org.apache.kafka.clients.admin.ConfigEntry(p[0].trim(), p[1].trim()),
                                org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET));
                    }
                }
                req.put(alsoRes, alsoOps);
            }
            Map<org.apache.kafka.common.config.ConfigResource, org.apache.kafka.common.KafkaFuture<Void>> fs =
                    admin.incrementalAlterConfigs(req).values();
            String outcome;
            String message = "";
            try {
                fs.get(res).get(remainingMs(), TimeUnit.MILLISECONDS);
                outcome = "ok";
            } catch (ExecutionException e) {
                outcome = e.getCause().getClass().getSimpleName();
                message = String.valueOf(e.getCause().getMessage());
            }
            check(outcome.equals(expect), "incrementalAlterConfigs: %s (%s), expected %s", outcome, message, expect);
            if (alsoRes != null) {
                String alsoOutcome;
                String alsoMessage = "";
                try {
                    fs.get(alsoRes).get(remainingMs(), TimeUnit.MILLISECONDS);
                    alsoOutcome = "ok";
                } catch (ExecutionException e) {
                    alsoOutcome = e.getCause().getClass().getSimpleName();
                    alsoMessage = String.valueOf(e.getCause().getMessage());
                }
                String alsoExpect = opt("also-expect", "ok");
                check(alsoOutcome.equals(alsoExpect), "second resource: %s (%s), expected %s", alsoOutcome,
                        alsoMessage, alsoExpect);
                check(alsoMessage.contains(opt("also-message", "")), "second resource's message: %s", alsoMessage);
                message = message + " | " + also + ": " + alsoMessage;
            }
            if (!expect.equals("ok")) {
                check(message.contains("Sluice policy"), "error message does not name the policy: %s", message);
            } else {
                // Brokers apply a config change from the metadata log asynchronously: read back
                // until every value shows (or the deadline).
                while (true) {
                    org.apache.kafka.clients.admin.Config got = admin.describeConfigs(List.of(res)).all()
                            .get(remainingMs(), TimeUnit.MILLISECONDS).get(res);
                    List<String> wrong = new ArrayList<>();
                    for (Map.Entry<String, String> e : want.entrySet()) {
                        org.apache.kafka.clients.admin.ConfigEntry ce = got.get(e.getKey());
                        if (ce == null || !e.getValue().equals(ce.value())) {
                            wrong.add(e.getKey() + "=" + (ce == null ? null : ce.value()));
                        }
                    }
                    if (wrong.isEmpty()) {
                        break;
                    }
                    check(remainingMs() > 1000, "configs after the change: %s, expected %s", wrong, want);
                    Thread.sleep(200);
                }
            }
            return String.format("\"outcome\":\"%s\",\"message\":%s", outcome, jsonString(message));
        }
    }

    /**
     * Creates --topic, deletes the records of partition 0 before offset 0 and checks the outcome
     * against --expect: "ok" or the simple class name of the exception it must fail with.
     */
    String deleteRecordsExpect() throws Exception {
        String topic = topic();
        String expect = opt("expect", "ok");
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, 1, (short) 3, Map.of());
            String outcome;
            String message = "";
            try {
                admin.deleteRecords(Map.of(new TopicPartition(topic, 0),
                        org.apache.kafka.clients.admin.RecordsToDelete.beforeOffset(0L)))
                        .all().get(remainingMs(), TimeUnit.MILLISECONDS);
                outcome = "ok";
            } catch (ExecutionException e) {
                outcome = e.getCause().getClass().getSimpleName();
                message = String.valueOf(e.getCause().getMessage());
            }
            check(outcome.equals(expect), "deleteRecords: %s (%s), expected %s", outcome, message, expect);
            return String.format("\"outcome\":\"%s\",\"message\":%s", outcome, jsonString(message));
        }
    }

    /**
     * Produces --records records of --value-bytes, then consumes them all (assign mode, from the
     * beginning) and reports the consumed bytes per second between --warmup-s and the end, the
     * consumer's fetch-throttle-time-max, and checks every record arrived.
     */
    String consumeRate() throws Exception {
        String topic = topic();
        int partitions = 3;
        int n = intOpt("records", 2000);
        int valueBytes = intOpt("value-bytes", 4096);
        long warmupMs = longOpt("warmup-s", 2) * 1000;
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, partitions, (short) 3, Map.of());
        }
        String pad = "y".repeat(valueBytes);
        List<Acked> acked = new ArrayList<>();
        try (KafkaProducer<String, String> p = producer("producer", props())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            List<String> keys = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                String k = key(i);
                keys.add(k);
                fs.add(p.send(new ProducerRecord<>(topic, i % partitions, k, k + pad)));
            }
            p.flush();
            for (int i = 0; i < n; i++) {
                RecordMetadata m = fs.get(i).get(remainingMs(), TimeUnit.MILLISECONDS);
                acked.add(new Acked(keys.get(i), keys.get(i) + pad, m.partition(), m.offset()));
            }
        }
        long windowBytes = 0;
        long start;
        long last;
        double throttleMax;
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer("consumer", null,
                props(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, opt("partition-fetch-bytes", "262144")))) {
            c.assign(partitionsOf(topic, partitions));
            c.seekToBeginning(c.assignment());
            phase("consuming");
            start = System.currentTimeMillis();
            last = start;
            while (countOurs(got, runId + "-") < n) {
                check(System.currentTimeMillis() < deadline, "timed out consuming: %d of %d", got.size(), n);
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.add(r);
                    long now = System.currentTimeMillis();
                    if (now - start >= warmupMs) {
                        windowBytes += r.key().length() + r.value().length();
                        last = now;
                    }
                }
            }
            throttleMax = 0;
            for (Map.Entry<MetricName, ? extends Metric> e : c.metrics().entrySet()) {
                if (e.getKey().name().equals("fetch-throttle-time-max")
                        && e.getValue().metricValue() instanceof Number num && !Double.isNaN(num.doubleValue())) {
                    throttleMax = Math.max(throttleMax, num.doubleValue());
                }
            }
        }
        verifyExactly(acked, got, "consume-rate");
        double secs = Math.max(0.001, (last - start - warmupMs) / 1000.0);
        return String.format("\"records\":%d,\"bytes_per_s\":%.0f,\"window_s\":%.1f,\"fetch_throttle_max_ms\":%.0f",
                n, windowBytes / secs, secs, throttleMax);
    }

    // ----------------------------------------------------------------------------------------------
    // Operations scenarios (admin API, reload, drain): the harness acts while the client waits on
    // stdin, so what the client counts and what Sluice counts can be compared at one instant.

    /** Sum of a client-level metric (group producer-metrics, consumer-metrics, admin-client-metrics). */
    static double clientMetric(Map<MetricName, ? extends Metric> metrics, String name) {
        double sum = 0;
        for (Map.Entry<MetricName, ? extends Metric> e : metrics.entrySet()) {
            String g = e.getKey().group();
            if (e.getKey().name().equals(name)
                    && (g.equals("producer-metrics") || g.equals("consumer-metrics") || g.equals("admin-client-metrics"))) {
                Object v = e.getValue().metricValue();
                if (v instanceof Number num) {
                    sum += num.doubleValue();
                }
            }
        }
        return sum;
    }

    void awaitGo(String announce) throws Exception {
        System.out.println(announce);
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line = in.readLine();
        check("go".equals(line == null ? null : line.trim()), "expected 'go' on stdin, got %s", line);
    }

    List<TopicPartition> partitionsOf(String topic, int partitions) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < partitions; i++) {
            tps.add(new TopicPartition(topic, i));
        }
        return tps;
    }

    /**
     * Produces and consumes (assign mode, no group: no background heartbeats), then reports the
     * requests its clients sent (Kafka's own request-total metrics) and waits on stdin while the
     * harness scrapes Sluice, so the two counts can be compared exactly.
     */
    String metricsProbe() throws Exception {
        String topic = topic();
        int partitions = intOpt("partitions", 3);
        int n = intOpt("records", 500);
        double requests = 0;
        double responses = 0;
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, partitions, (short) 3, Map.of());
            requests += clientMetric(admin.metrics(), "request-total");
            responses += clientMetric(admin.metrics(), "response-total");
        }
        List<Acked> acked;
        try (KafkaProducer<String, String> p = producer("producer", props())) {
            acked = produceAll(p, topic, n, partitions, 0);
            requests += clientMetric(p.metrics(), "request-total");
            responses += clientMetric(p.metrics(), "response-total");
        }
        try (KafkaConsumer<String, String> c = consumer("consumer", null,
                props(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100"))) {
            c.assign(partitionsOf(topic, partitions));
            c.seekToBeginning(c.assignment());
            List<ConsumerRecord<String, String>> got = consumeUntil(c, g -> countOurs(g, runId + "-") >= n);
            verifyExactly(acked, got, "metrics-probe");
            // The consumer sends its next Fetch within poll(); none leaves outside poll().
            requests += clientMetric(c.metrics(), "request-total");
            responses += clientMetric(c.metrics(), "response-total");
            awaitGo(String.format("{\"phase\":\"counted\",\"requests\":%d,\"responses\":%d}",
                    (long) requests, (long) responses));
        }
        return String.format("\"records\":%d,\"requests\":%d,\"responses\":%d", n, (long) requests,
                (long) responses);
    }

    /**
     * A producer (acks=all, idempotent) and a consumer run continuously; after the first acks the
     * client announces itself and waits for "go" (the harness reloads Sluice meanwhile), keeps going
     * for `after` more records, then checks that every acked record was consumed and that neither
     * client had to open or lost a connection across the reload.
     */
    String reloadSteady() throws Exception {
        String topic = topic();
        int partitions = intOpt("partitions", 3);
        int after = intOpt("after", 400);
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, partitions, (short) 3, Map.of());
        }
        List<Acked> acked = Collections.synchronizedList(new ArrayList<>());
        AtomicReference<Exception> sendError = new AtomicReference<>();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger sent = new AtomicInteger();
        List<ConsumerRecord<String, String>> got = Collections.synchronizedList(new ArrayList<>());
        AtomicReference<Exception> pollError = new AtomicReference<>();
        AtomicBoolean stopConsumer = new AtomicBoolean();
        try (KafkaProducer<String, String> p = producer("producer", props());
                KafkaConsumer<String, String> c = consumer("consumer", null,
                        props(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "200"))) {
            c.assign(partitionsOf(topic, partitions));
            c.seekToBeginning(c.assignment());
            Thread consumerThread = new Thread(() -> {
                try {
                    while (!stopConsumer.get()) {
                        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) {
                            got.add(r);
                        }
                    }
                } catch (Exception e) {
                    pollError.set(e);
                }
            }, "consumer");
            consumerThread.start();
            Thread producerThread = new Thread(() -> {
                int i = 0;
                while (!stop.get() && sendError.get() == null) {
                    String k = key(i);
                    int part = i % partitions;
                    p.send(new ProducerRecord<>(topic, part, k, value(k)), (m, e) -> {
                        if (e != null) {
                            sendError.compareAndSet(null, e);
                        } else {
                            acked.add(new Acked(k, value(k), m.partition(), m.offset()));
                        }
                    });
                    sent.set(++i);
                    try {
                        Thread.sleep(2);
                    } catch (InterruptedException ie) {
                        return;
                    }
                }
            }, "producer");
            producerThread.start();
            try {
                waitForCount("acks before the reload", () -> acked.size() >= 200 && got.size() >= 100, sendError);
                double conns = clientMetric(p.metrics(), "connection-creation-total")
                        + clientMetric(c.metrics(), "connection-creation-total");
                double closes = clientMetric(p.metrics(), "connection-close-total")
                        + clientMetric(c.metrics(), "connection-close-total");
                awaitGo(String.format("{\"phase\":\"running\",\"acked\":%d,\"connections\":%d,\"closes\":%d}",
                        acked.size(), (long) conns, (long) closes));
                int base = acked.size();
                waitForCount("acks after the reload", () -> acked.size() >= base + after, sendError);
                stop.set(true);
                producerThread.join(10_000);
                p.flush();
                check(sendError.get() == null, "send failed: %s", sendError.get());
                int total = acked.size();
                waitForCount("consumer catching up", () -> countOurs(new ArrayList<>(got), runId + "-") >= total,
                        pollError);
                stopConsumer.set(true);
                consumerThread.join(10_000);
                check(pollError.get() == null, "poll failed: %s", pollError.get());
                double conns2 = clientMetric(p.metrics(), "connection-creation-total")
                        + clientMetric(c.metrics(), "connection-creation-total");
                double closes2 = clientMetric(p.metrics(), "connection-close-total")
                        + clientMetric(c.metrics(), "connection-close-total");
                verifyExactly(new ArrayList<>(acked), new ArrayList<>(got), "reload-steady");
                return String.format(
                        "\"records\":%d,\"connections_before\":%d,\"connections_after\":%d,\"closes_before\":%d,\"closes_after\":%d",
                        total, (long) conns, (long) conns2, (long) closes, (long) closes2);
            } finally {
                stop.set(true);
                stopConsumer.set(true);
                producerThread.join(10_000);
                consumerThread.join(10_000);
            }
        }
    }

    /**
     * Produces continuously through Sluice; after the first acks it announces itself and waits for
     * "go" (the harness sends SIGTERM meanwhile), keeps sending until sends fail, then reads every
     * partition directly from the brokers (`--direct-bootstrap`) and checks that every acked record
     * is there: a drain never loses an acknowledged write.
     */
    String produceThroughDrain() throws Exception {
        String topic = topic();
        int partitions = intOpt("partitions", 3);
        String direct = opt("direct-bootstrap", null);
        check(direct != null, "--direct-bootstrap is required");
        try (Admin admin = admin()) {
            ensureTopic(admin, topic, partitions, (short) 3, Map.of());
        }
        List<Acked> acked = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger failed = new AtomicInteger();
        AtomicBoolean stop = new AtomicBoolean();
        Properties extra = props(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "4000",
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000",
                ProducerConfig.MAX_BLOCK_MS_CONFIG, "2000");
        try (KafkaProducer<String, String> p = producer("producer", extra)) {
            Thread producerThread = new Thread(() -> {
                int i = 0;
                while (!stop.get()) {
                    String k = key(i++);
                    try {
                        p.send(new ProducerRecord<>(topic, i % partitions, k, value(k)), (m, e) -> {
                            if (e != null) {
                                failed.incrementAndGet();
                            } else {
                                acked.add(new Acked(k, value(k), m.partition(), m.offset()));
                            }
                        });
                    } catch (Exception e) {
                        failed.incrementAndGet();
                    }
                    try {
                        Thread.sleep(1);
                    } catch (InterruptedException ie) {
                        return;
                    }
                }
            }, "producer");
            producerThread.start();
            try {
                waitForCount("acks before the drain", () -> acked.size() >= 300, new AtomicReference<>());
                awaitGo(String.format("{\"phase\":\"running\",\"acked\":%d}", acked.size()));
                int before = acked.size();
                phase("producing until the gateway is gone");
                long until = System.currentTimeMillis() + 6_000;
                while (failed.get() == 0 && System.currentTimeMillis() < until) {
                    Thread.sleep(50);
                }
                check(failed.get() > 0, "sends kept succeeding 6 s after the drain began");
                stop.set(true);
                producerThread.join(10_000);
                Thread.sleep(4_500); // every outstanding send completes (delivery.timeout.ms)
                check(acked.size() >= before, "acks went backwards");
            } finally {
                stop.set(true);
                producerThread.join(10_000);
            }
        } catch (Exception e) {
            // Closing a producer whose gateway is gone may time out; the acks are what matter.
            phase("producer close: " + e);
        }
        List<Acked> all = new ArrayList<>(acked);
        Properties directProps = new Properties();
        directProps.put("bootstrap.servers", direct);
        directProps.put("client.id", "sluice-it-drain-verify-" + runId);
        directProps.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        directProps.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        Set<String> wantKeys = new HashSet<>();
        for (Acked a : all) {
            wantKeys.add(a.key());
        }
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(directProps, new StringDeserializer(),
                new StringDeserializer())) {
            c.assign(partitionsOf(topic, partitions));
            c.seekToBeginning(c.assignment());
            Set<String> seen = new HashSet<>();
            phase("reading back directly from the brokers");
            while (!seen.containsAll(wantKeys)) {
                check(System.currentTimeMillis() < deadline, "acked records missing after the drain: %d of %d found",
                        seen.size(), wantKeys.size());
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.add(r);
                    if (r.key() != null) {
                        seen.add(r.key());
                    }
                }
            }
        }
        for (Acked a : all) {
            boolean found = false;
            for (ConsumerRecord<String, String> r : got) {
                if (a.key().equals(r.key())) {
                    check(r.partition() == a.partition() && r.offset() == a.offset() && a.value().equals(r.value()),
                            "record %s differs from its ack", a.key());
                    found = true;
                    break;
                }
            }
            check(found, "acked record %s missing", a.key());
        }
        return String.format("\"acked\":%d,\"failed_sends\":%d", all.size(), failed.get());
    }

    /**
     * Topic aliases and hidden topics through Sluice ([policy.topics]): --alias A stands for the
     * upstream topic --upstream U, --hidden H is hidden; --direct is a broker's own bootstrap, used
     * only to set up and to check from the broker's side. Admin listing shows A, never U or H; A
     * describes with U's topic id; H describes as unknown; records produced to A are consumed
     * through A by a group that commits, the committed offsets are listed under A through Sluice
     * and under U directly, and a direct consumer of U reads the same records; producing to H fails
     * as for a topic that does not exist.
     */
    String topicMap() throws Exception {
        String alias = opts.get("alias");
        String upstream = opts.get("upstream");
        String hidden = opts.get("hidden");
        String direct = opts.get("direct");
        check(alias != null && upstream != null && hidden != null && direct != null,
                "--alias, --upstream, --hidden and --direct are required");
        int n = intOpt("records", 300);
        int partitions = 3;
        String group = "tm-" + runId;
        Properties dp = common("direct-admin");
        dp.put("bootstrap.servers", direct);
        org.apache.kafka.common.Uuid upstreamId;
        try (Admin d = Admin.create(dp)) {
            phase("creating topics directly");
            for (String t : List.of(upstream, hidden)) {
                try {
                    d.createTopics(List.of(new NewTopic(t, partitions, (short) 3))).all().get();
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw e;
                    }
                }
            }
            upstreamId = d.describeTopics(List.of(upstream)).allTopicNames().get().get(upstream).topicId();
        }
        Set<String> listed;
        try (Admin a = admin()) {
            // The alias becomes visible once the broker's metadata has the upstream topic.
            ensureTopic(a, alias, partitions, (short) 3, Map.of());
            phase("listing topics through Sluice");
            listed = a.listTopics().names().get();
            check(listed.contains(alias), "listTopics through Sluice lacks the alias %s: %s", alias, listed);
            check(!listed.contains(upstream), "listTopics through Sluice shows the aliased upstream topic %s", upstream);
            check(!listed.contains(hidden), "listTopics through Sluice shows the hidden topic %s", hidden);
            for (String t : listed) {
                check(!t.startsWith("sluice!"), "listTopics shows a reserved name %s", t);
            }
            TopicDescription td = a.describeTopics(List.of(alias)).allTopicNames().get().get(alias);
            check(td.name().equals(alias), "describeTopics(%s) answered for %s", alias, td.name());
            check(td.topicId().equals(upstreamId), "alias %s has topic id %s, upstream %s has %s", alias,
                    td.topicId(), upstream, upstreamId);
            for (String t : List.of(hidden, upstream)) {
                phase("describing " + t + " through Sluice");
                try {
                    a.describeTopics(List.of(t)).allTopicNames().get();
                    throw new Fail("describeTopics(" + t + ") through Sluice succeeded; it is hidden");
                } catch (ExecutionException e) {
                    check(e.getCause() instanceof org.apache.kafka.common.errors.UnknownTopicOrPartitionException,
                            "describeTopics(%s): %s, expected UnknownTopicOrPartitionException", t, e.getCause());
                }
            }
            phase("describing configs of " + alias);
            org.apache.kafka.common.config.ConfigResource cr = new org.apache.kafka.common.config.ConfigResource(
                    org.apache.kafka.common.config.ConfigResource.Type.TOPIC, alias);
            org.apache.kafka.clients.admin.Config cfg = a.describeConfigs(List.of(cr)).all().get().get(cr);
            check(cfg != null && cfg.get("cleanup.policy") != null, "describeConfigs(%s): %s", alias, cfg);
            // DeleteRecords carries topic names Sluice does not map: not offered with a topic map.
            phase("deleteRecords through Sluice");
            try {
                a.deleteRecords(Map.of(new TopicPartition(alias, 0),
                        org.apache.kafka.clients.admin.RecordsToDelete.beforeOffset(0))).all().get();
                throw new Fail("deleteRecords through Sluice succeeded; it is not offered with a topic map");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.UnsupportedVersionException,
                        "deleteRecords: %s, expected UnsupportedVersionException", e.getCause());
            }
        }
        List<Acked> acked;
        try (KafkaProducer<String, String> p = producer("producer", props())) {
            acked = produceAll(p, alias, n, partitions, 0);
        }
        List<ConsumerRecord<String, String>> got;
        try (KafkaConsumer<String, String> c = consumer("consumer", group, props())) {
            c.subscribe(List.of(alias));
            got = consumeUntil(c, g -> countOurs(g, runId + "-") >= n);
            for (ConsumerRecord<String, String> r : got) {
                check(r.topic().equals(alias), "consumed a record of topic %s", r.topic());
            }
            phase("committing");
            c.commitSync();
        }
        verifyExactly(acked, got, "through the alias");
        long viaSluice = 0;
        long viaBroker = 0;
        try (Admin a = admin(); Admin d = Admin.create(dp)) {
            phase("listing committed offsets");
            for (Map.Entry<TopicPartition, OffsetAndMetadata> e : a.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get().entrySet()) {
                check(e.getKey().topic().equals(alias), "offsets through Sluice name %s", e.getKey());
                viaSluice += e.getValue().offset();
            }
            for (Map.Entry<TopicPartition, OffsetAndMetadata> e : d.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get().entrySet()) {
                check(e.getKey().topic().equals(upstream), "offsets on the broker name %s", e.getKey());
                viaBroker += e.getValue().offset();
            }
        }
        check(viaSluice == n && viaBroker == n, "committed offsets sum to %d through Sluice and %d on the broker, produced %d",
                viaSluice, viaBroker, n);
        Properties dc = props("bootstrap.servers", direct);
        List<ConsumerRecord<String, String>> direct_got;
        try (KafkaConsumer<String, String> c = consumer("direct-consumer", null, dc)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) {
                tps.add(new TopicPartition(upstream, i));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            direct_got = consumeUntil(c, g -> countOurs(g, runId + "-") >= n);
        }
        verifyExactly(acked, direct_got, "upstream topic read directly");
        phase("producing to the hidden topic");
        String hiddenError;
        try (KafkaProducer<String, String> p = producer("hidden-producer", props("max.block.ms", "3000"))) {
            p.send(new ProducerRecord<>(hidden, "k", "v")).get(10, TimeUnit.SECONDS);
            throw new Fail("producing to hidden topic " + hidden + " succeeded");
        } catch (ExecutionException e) {
            hiddenError = e.getCause().toString();
        } catch (org.apache.kafka.common.errors.TimeoutException e) {
            hiddenError = e.toString();
        }
        check(hiddenError.contains("not present in metadata") || hiddenError.contains("UnknownTopicOrPartition"),
                "producing to the hidden topic failed with %s", hiddenError);
        return String.format("\"records\":%d,\"listed\":%d,\"offsets_via_sluice\":%d,\"offsets_on_broker\":%d,\"hidden_error\":%s",
                n, listed.size(), viaSluice, viaBroker, jsonString(hiddenError));
    }

    /**
     * Harness probe (run against the brokers directly, as the super user): allows --principal
     * every operation on topics starting with --topic (a PREFIXED ALLOW ACL); the broker's
     * authorizer then denies those topics to every other principal.
     */
    String aclGrant() throws Exception {
        String prefix = topic();
        String principal = opt("principal", "");
        check(principal.startsWith("User:"), "--principal User:NAME is required");
        AclBinding binding = new AclBinding(
                new ResourcePattern(ResourceType.TOPIC, prefix, PatternType.PREFIXED),
                new AccessControlEntry(principal, "*", AclOperation.ALL, AclPermissionType.ALLOW));
        try (Admin admin = admin()) {
            admin.createAcls(List.of(binding)).all().get(remainingMs(), TimeUnit.MILLISECONDS);
            // Wait until the ACL is visible (it is applied through the metadata log).
            while (admin.describeAcls(binding.toFilter()).values().get(remainingMs(), TimeUnit.MILLISECONDS).isEmpty()) {
                Thread.sleep(100);
            }
        }
        return String.format("\"principal\":%s,\"prefix\":%s", jsonString(principal), jsonString(prefix));
    }

    /**
     * Tries to produce to and consume from --topic (which must not be created here) and reports
     * how each failed: `produce_error` and `consume_error` (exception class names, "none" when
     * it worked) and `consumed` (records read). Fails only on an unexpected success: --expect
     * names the exception class both must fail with, or "any" (any failure, none consumed).
     */
    String accessDenied() throws Exception {
        String topic = topic();
        String expect = opt("expect", "any");
        long waitMs = longOpt("wait-ms", 8000);
        String produceError = "none";
        Properties extra = props(
                ProducerConfig.MAX_BLOCK_MS_CONFIG, Long.toString(waitMs),
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Long.toString(waitMs),
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(waitMs),
                ProducerConfig.LINGER_MS_CONFIG, "0");
        phase("producing to " + topic);
        try (KafkaProducer<String, String> p = producer("producer", extra)) {
            p.send(new ProducerRecord<>(topic, 0, "k", "v")).get(waitMs + 5000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            produceError = e.getCause().getClass().getSimpleName();
        } catch (org.apache.kafka.common.KafkaException | java.util.concurrent.TimeoutException e) {
            produceError = e.getClass().getSimpleName();
        }
        phase("consuming from " + topic);
        String consumeError = "none";
        int consumed = 0;
        try (KafkaConsumer<String, String> c = consumer("consumer", null,
                props(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(waitMs),
                        ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(waitMs)))) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long until = System.currentTimeMillis() + waitMs;
            while (System.currentTimeMillis() < until) {
                consumed += c.poll(Duration.ofMillis(250)).count();
            }
        } catch (org.apache.kafka.common.KafkaException e) {
            consumeError = e.getClass().getSimpleName();
        }
        String result = String.format("\"produce_error\":%s,\"consume_error\":%s,\"consumed\":%d",
                jsonString(produceError), jsonString(consumeError), consumed);
        check(consumed == 0, "consumed %d record(s) of %s: %s", consumed, topic, result);
        check(!produceError.equals("none"), "produced to %s: %s", topic, result);
        if (!expect.equals("any")) {
            check(produceError.equals(expect) && consumeError.equals(expect),
                    "expected both to fail with %s: %s", expect, result);
        }
        return result;
    }

    // ----------------------------------------------------------------------------------------------

    String run() throws Exception {
        switch (scenario) {
            case "describe-cluster":
            case "admin-describe-cluster":
                return describeCluster();
            case "produce-consume":
                return produceConsume();
            case "group-rebalance":
                return groupRebalance();
            case "idempotent":
                return idempotent();
            case "transactional":
                return transactional();
            case "admin":
                return adminScenario();
            case "leader-change":
                return leaderChange();
            case "metrics-probe":
                return metricsProbe();
            case "reload-steady":
                return reloadSteady();
            case "produce-through-drain":
                return produceThroughDrain();
            case "produce-expect":
                return produceExpect();
            case "produce-rate":
                return produceRate();
            case "delete-topic-expect":
                return deleteTopicExpect();
            case "create-topic-expect":
                return createTopicExpect();
            case "consume-rate":
                return consumeRate();
            case "topic-map":
                return topicMap();
            case "client-id-expect":
                return clientIdExpect();
            case "alter-config-expect":
                return alterConfigExpect();
            case "delete-records-expect":
                return deleteRecordsExpect();
            case "acl-grant":
                return aclGrant();
            case "access-denied":
                return accessDenied();
            default:
                throw new Fail("unknown scenario " + scenario);
        }
    }

    static String jsonString(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }

    public static void main(String[] args) {
        String name = args.length > 0 ? args[0] : "?";
        int status;
        String line;
        try {
            Scenario s = new Scenario(args);
            long timeout = s.deadline - System.currentTimeMillis();
            Thread watchdog = new Thread(() -> {
                try {
                    Thread.sleep(timeout + 15_000);
                } catch (InterruptedException e) {
                    return;
                }
                System.out.println("{\"scenario\":" + jsonString(name) + ",\"ok\":false,\"error\":" + jsonString("watchdog: scenario hung while " + phase) + "}");
                System.out.flush();
                System.err.println("FAIL " + name + ": watchdog: scenario hung while " + phase);
                Runtime.getRuntime().halt(3);
            }, "watchdog");
            watchdog.setDaemon(true);
            watchdog.start();
            long t0 = System.nanoTime();
            String body = s.run();
            long ms = (System.nanoTime() - t0) / 1_000_000;
            line = "{\"scenario\":" + jsonString(name) + ",\"ok\":true,\"elapsed_ms\":" + ms
                    + (body.isEmpty() ? "" : "," + body) + "}";
            status = 0;
        } catch (Throwable t) {
            Throwable c = t instanceof ExecutionException && t.getCause() != null ? t.getCause() : t;
            String msg = c instanceof Fail ? c.getMessage() : c.toString();
            line = "{\"scenario\":" + jsonString(name) + ",\"ok\":false,\"error\":" + jsonString(msg) + "}";
            System.err.println("FAIL " + name + ": " + msg);
            if (!(c instanceof Fail)) {
                c.printStackTrace(System.err);
            }
            status = 1;
        }
        System.out.println(line);
        System.out.flush();
        // Client threads (e.g. a stuck member) must not keep the JVM alive.
        Runtime.getRuntime().halt(status);
    }
}
