#!/usr/bin/env python3
"""librdkafka (via confluent-kafka-python) scenario client for Sluice's integration tests.

Usage:
    scenario.py <scenario> --bootstrap HOST:PORT --topic T [--records N] [--forbid-ports p1,p2]
                [--protocol classic|consumer] [--partitions 6] [--replication-factor 3]
                [--expect-brokers 3] [--records-after 300] [--timeout 60] [--verbose]

Aliases matching the Java scenario client: --rf, --brokers, --timeout-ms.

Scenarios: produce-consume, group-rebalance, admin, idempotent, transactional, leader-change.

Prints exactly one JSON line on stdout ({"scenario":...,"ok":true|false,...}) and exits 0 only if
every check passed; on failure the reason also goes to stderr and the exit status is 1 (2 for
usage errors, 3 when the watchdog fires). `leader-change` additionally prints {"leader":N} first
and then waits for a line "go" on stdin (the handshake of the Java client's scenario; see there).
"""

import argparse
import json
import logging
import os
import sys
import threading
import time
import traceback

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
    libversion,
    version,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

SCENARIOS = ("produce-consume", "group-rebalance", "admin", "idempotent", "transactional", "leader-change",
             "produce-expect", "delete-topic-expect", "create-topic-expect", "topic-map", "client-id-expect",
             "alter-config-expect", "delete-records-expect")


class Fail(Exception):
    """A failed check."""


_emitted = threading.Lock()
_emitted_done = False


def emit(result):
    global _emitted_done
    with _emitted:
        if _emitted_done:
            return
        _emitted_done = True
        # "scenario" and "ok" first (as the Java client does: the harness finds the line by its
        # prefix), then the other fields in key order; compact separators.
        ordered = {"scenario": result.get("scenario"), "ok": result.get("ok") is True}
        for k in sorted(result):
            if k not in ordered:
                ordered[k] = result[k]
        sys.stdout.write(json.dumps(ordered, separators=(",", ":"), default=str) + "\n")
        sys.stdout.flush()


def log(msg):
    sys.stderr.write("librdkafka-scenario: %s\n" % msg)
    sys.stderr.flush()


class Ctx:
    """Options, deadline and process-wide observations (brokers seen by any client)."""

    def __init__(self, args):
        self.args = args
        self.deadline = time.monotonic() + args.timeout
        self.run_id = "%x" % (time.time_ns() % (1 << 40))
        self.forbid = set()
        for p in (args.forbid_ports or "").split(","):
            p = p.strip()
            if p:
                self.forbid.add(int(p))
        self.known = {}  # "host:port" -> where it was seen
        self.lock = threading.Lock()

    def remaining(self, cap=None):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Fail("scenario deadline of %ss exceeded" % self.args.timeout)
        return min(left, cap) if cap is not None else left

    # -- clients -------------------------------------------------------------------------------

    def base_conf(self, **extra):
        conf = {
            "bootstrap.servers": self.args.bootstrap,
            "client.id": self.args.client_id,
            "socket.timeout.ms": 15000,
            "statistics.interval.ms": 250,
            "stats_cb": self._stats,
            "error_cb": self._error,
        }
        if self.args.sasl_mechanism:
            # SASL_PLAINTEXT with PLAIN or SCRAM-SHA-256/512 (KIP-43, KIP-84, KIP-152).
            conf.update({
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": self.args.sasl_mechanism,
                "sasl.username": self.args.sasl_username,
                "sasl.password": self.args.sasl_password,
            })
        if self.args.verbose:
            conf["debug"] = "broker,protocol,cgrp,topic,eos,security"
        conf.update(extra)
        return conf

    def _stats(self, stats_json):
        # Every broker handle librdkafka has (bootstrap and learned): it may connect to any.
        try:
            stats = json.loads(stats_json)
        except ValueError:
            return
        with self.lock:
            for b in stats.get("brokers", {}).values():
                node = b.get("nodename") or ""
                if node and b.get("nodeid", -1) >= 0:
                    self.known[node] = b.get("name", node)
            eos = stats.get("eos")
            if eos and eos.get("producer_id", -1) >= 0:
                self.producer_ids = getattr(self, "producer_ids", set())
                self.producer_ids.add(eos["producer_id"])

    def _error(self, err):
        # librdkafka reports transient errors (e.g. a broker connection going down) here; they are
        # logged, and fatal ones fail the scenario.
        log("client error: %s" % err)
        with self.lock:
            self.errors = getattr(self, "errors", [])
            self.errors.append(err)
        if err.fatal():
            self.fatal = err

    def admin(self):
        return AdminClient(self.base_conf())

    def producer(self, **extra):
        conf = self.base_conf(acks="all", **{"linger.ms": 5})
        conf.update(extra)
        return Producer(conf)

    def consumer(self, **extra):
        conf = self.base_conf(**{"auto.offset.reset": "earliest", "fetch.wait.max.ms": 500})
        conf.update(extra)
        return Consumer(conf)

    # -- checks --------------------------------------------------------------------------------

    def check_brokers(self, where, brokers):
        """brokers: iterable of (id, host, port). Fails on a forbidden port."""
        addrs = sorted("%d@%s:%d" % (i, h, p) for (i, h, p) in brokers)
        if not addrs:
            raise Fail("%s: no brokers reported" % where)
        for (i, h, p) in brokers:
            if p in self.forbid:
                raise Fail(
                    "%s: client learned forbidden broker address %d@%s:%d (a real broker port leaked through)"
                    % (where, i, h, p)
                )
        return addrs

    def check_metadata(self, where, client):
        md = client.list_topics(timeout=self.remaining(15))
        return self.check_brokers(where, [(b.id, b.host, b.port) for b in md.brokers.values()])

    def check_known(self, where, *clients):
        """Every client's own metadata view and every broker handle seen in statistics."""
        for c in clients:
            self.check_metadata(where, c)
        with self.lock:
            for node in self.known:
                port = int(node.rsplit(":", 1)[1])
                if port in self.forbid:
                    raise Fail("%s: a client had a broker handle for forbidden address %s" % (where, node))

    def known_addrs(self):
        with self.lock:
            return sorted(self.known)


# ---------------------------------------------------------------------------------------------
# helpers


def ensure_topic(ctx, admin, topic, want_partitions=None):
    a = ctx.args
    fs = admin.create_topics(
        [NewTopic(topic, num_partitions=a.partitions, replication_factor=a.replication_factor)],
        request_timeout=ctx.remaining(15),
    )
    try:
        fs[topic].result(timeout=ctx.remaining(20))
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise Fail("create topic %s: %s" % (topic, e.args[0]))
    wait_topic_ready(ctx, admin, topic, want_partitions)


def wait_topic_ready(ctx, admin, topic, want_partitions=None):
    last = "?"
    while True:
        try:
            md = admin.list_topics(topic=topic, timeout=ctx.remaining(5))
            t = md.topics.get(topic)
            if t is None:
                last = "missing from metadata"
            elif t.error is not None:
                last = str(t.error)
            elif not t.partitions or (want_partitions and len(t.partitions) != want_partitions):
                last = "%d partitions" % len(t.partitions)
            elif any(p.leader < 0 or p.error is not None for p in t.partitions.values()):
                last = "partitions without leader"
            else:
                return len(t.partitions)
        except KafkaException as e:
            last = str(e)
        if ctx.deadline - time.monotonic() < 0.3:
            raise Fail("topic %s not ready: %s" % (topic, last))
        time.sleep(0.2)


def make_records(prefix, n):
    return [
        ("%s-k-%06d" % (prefix, i), "%s-v-%06d-%s" % (prefix, i, "x" * (i % 64)))
        for i in range(n)
    ]


def produce(ctx, producer, topic, records, partition_of=None):
    """Produce and wait for every delivery report. Returns key -> (value, partition, offset)."""
    delivered = {}
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
            return
        delivered[msg.key().decode()] = (msg.value().decode(), msg.partition(), msg.offset())

    for i, (k, v) in enumerate(records):
        kwargs = {"key": k, "value": v, "on_delivery": on_delivery}
        if partition_of is not None:
            kwargs["partition"] = partition_of(i)
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(min(0.1, ctx.remaining()))
        producer.poll(0)
    while True:
        left = producer.flush(ctx.remaining(1.0))
        if left == 0:
            break
    if errors:
        raise Fail("%d of %d records failed delivery, first error: %s" % (len(errors), len(records), errors[0]))
    if len(delivered) != len(records):
        raise Fail("%d delivery reports for %d records" % (len(delivered), len(records)))
    return delivered


class Verifier:
    def __init__(self, want):
        self.want = want
        self.seen = {}
        self.foreign = 0
        self.problems = []
        self.per_owner = {}

    def problem(self, msg):
        if len(self.problems) < 10:
            self.problems.append(msg)

    def add(self, owner, msg):
        key = msg.key().decode() if msg.key() is not None else None
        d = self.want.get(key)
        if d is None:
            self.foreign += 1
            return
        if key in self.seen:
            self.problem(
                "duplicate record key %s (first consumed by %s, again by %s at p%d@%d)"
                % (key, self.seen[key], owner, msg.partition(), msg.offset())
            )
            return
        self.seen[key] = owner
        self.per_owner[owner] = self.per_owner.get(owner, 0) + 1
        value = msg.value().decode() if msg.value() is not None else None
        if value != d[0]:
            self.problem("key %s: value %r, produced %r" % (key, value, d[0]))
        if (msg.partition(), msg.offset()) != (d[1], d[2]):
            self.problem(
                "key %s: consumed at p%d@%d but delivery report said p%d@%d"
                % (key, msg.partition(), msg.offset(), d[1], d[2])
            )

    def done(self):
        return len(self.seen) >= len(self.want) or bool(self.problems)

    def check(self):
        if self.problems:
            raise Fail("consumed records do not match produced: " + "; ".join(self.problems))
        if len(self.seen) != len(self.want):
            missing = sorted(k for k in self.want if k not in self.seen)[:5]
            raise Fail("consumed %d of %d produced records; missing e.g. %s" % (len(self.seen), len(self.want), missing))


def check_msg_error(owner, msg):
    err = msg.error()
    if err is None:
        return False
    if err.code() == KafkaError._PARTITION_EOF:
        return True
    if err.retriable() or not err.fatal() and err.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
        log("%s: transient consumer error: %s" % (owner, err))
        return True
    raise Fail("%s: consume error: %s" % (owner, err))


def consume_all(ctx, consumer, owner, verifier):
    while not verifier.done():
        msgs = consumer.consume(num_messages=1000, timeout=ctx.remaining(1.0))
        for m in msgs:
            if check_msg_error(owner, m):
                continue
            verifier.add(owner, m)


def end_offsets(ctx, admin, topic, partitions):
    """Log end offsets; retries transient errors (e.g. leadership still settling after creation)."""
    while True:
        req = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)}
        fs = admin.list_offsets(req, request_timeout=ctx.remaining(15))
        out = {}
        try:
            for tp, f in fs.items():
                out[tp.partition] = f.result(timeout=ctx.remaining(20)).offset
            if all(o >= 0 for o in out.values()):
                return out
            if ctx.deadline - time.monotonic() < 0.5:
                raise Fail("list offsets for %s: no end offset for some partitions: %s" % (topic, out))
            time.sleep(0.2)
        except KafkaException as e:
            err = e.args[0]
            if not err.retriable() and err.code() not in (
                KafkaError.NOT_LEADER_FOR_PARTITION,
                KafkaError.LEADER_NOT_AVAILABLE,
                KafkaError.UNKNOWN_TOPIC_OR_PART,
            ):
                raise Fail("list offsets for %s: %s" % (topic, err))
            if ctx.deadline - time.monotonic() < 0.5:
                raise Fail("list offsets for %s: %s" % (topic, err))
            time.sleep(0.2)


def commit_retrying(ctx, consumer, owner):
    """Synchronously commit the consumed positions, retrying transient failures."""
    for attempt in range(10):
        try:
            consumer.commit(asynchronous=False)
            return
        except KafkaException as e:
            err = e.args[0]
            if err.code() == KafkaError._NO_OFFSET:
                return  # nothing new to commit
            if attempt >= 9 or ctx.deadline - time.monotonic() < 1:
                raise Fail("%s: commit failed: %s" % (owner, err))
            log("%s: commit failed (retrying): %s" % (owner, err))
            time.sleep(0.2)


# ---------------------------------------------------------------------------------------------
# scenarios


def produce_consume(ctx, res):
    a = ctx.args
    admin = ctx.admin()
    res["broker_addrs"] = ctx.check_metadata("admin metadata", admin)
    ensure_topic(ctx, admin, a.topic)
    # Partition leaders must sit on every broker, so the records travel through every one of
    # Sluice's per-broker ports.
    md = admin.list_topics(topic=a.topic, timeout=ctx.remaining(10))
    leaders = sorted({p.leader for p in md.topics[a.topic].partitions.values()})
    res["leaders"] = leaders
    if a.expect_brokers and len(leaders) < min(a.expect_brokers, a.partitions):
        raise Fail("partition leaders on brokers %s only, expected all %d" % (leaders, a.expect_brokers))

    prod = ctx.producer()
    want = produce(ctx, prod, a.topic, make_records("pc-" + ctx.run_id, a.records))
    res["produced"] = len(want)
    parts = {d[1] for d in want.values()}
    res["partitions_written"] = len(parts)
    if a.records >= a.partitions * 20 and len(parts) != a.partitions:
        raise Fail("records landed on %d partitions, expected all %d" % (len(parts), a.partitions))

    cons = ctx.consumer(**{"group.id": "rdk-pc-" + ctx.run_id})
    cons.subscribe([a.topic])
    try:
        v = Verifier(want)
        consume_all(ctx, cons, "consumer", v)
        res["consumed"] = len(v.seen)
        res["foreign"] = v.foreign
        v.check()
        res["records"] = len(v.seen)
        commit_retrying(ctx, cons, "consumer")
        ctx.check_known("produce-consume", admin, prod, cons)
    finally:
        cons.close()


def group_rebalance(ctx, res):
    a = ctx.args
    res["protocol"] = a.protocol
    admin = ctx.admin()
    ensure_topic(ctx, admin, a.topic)
    group = "rdk-grp-%s-%s" % (a.protocol, ctx.run_id)
    res["group"] = group
    events = []

    def make(name):
        conf = {
            "group.id": group,
            "group.protocol": a.protocol,
            "enable.auto.commit": False,
        }
        if a.protocol == "classic":
            # librdkafka's default assignors (range,roundrobin): the eager protocol. (franz-go's
            # scenario covers cooperative-sticky.)
            conf.update({"session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
        c = ctx.consumer(**conf)

        def on_assign(consumer, partitions):
            events.append("%s assigned %s" % (name, sorted(p.partition for p in partitions)))

        def on_revoke(consumer, partitions):
            events.append("%s revoked %s" % (name, sorted(p.partition for p in partitions)))
            # Commit what was consumed before the partitions go elsewhere.
            try:
                if partitions:
                    consumer.commit(asynchronous=False)
            except KafkaException as e:
                if e.args[0].code() != KafkaError._NO_OFFSET:
                    log("%s: commit on revoke: %s" % (name, e.args[0]))

        def on_lost(consumer, partitions):
            events.append("%s lost %s" % (name, sorted(p.partition for p in partitions)))

        c.subscribe([a.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
        return c

    collected = []  # (owner, msg)

    def poll(name, c):
        for m in c.consume(num_messages=500, timeout=0.1):
            if check_msg_error(name, m):
                continue
            collected.append((name, m))

    def owned(c):
        return {tp.partition for tp in c.assignment()}

    def wait_for(what, cond, members):
        while not cond():
            if ctx.deadline - time.monotonic() < 0.2:
                raise Fail("timed out waiting for %s; assignment events so far: %s" % (what, events))
            for name, c in members:
                poll(name, c)

    ca = make("A")
    cb = None
    try:
        members = [("A", ca)]
        wait_for("member A to own all partitions", lambda: len(owned(ca)) == a.partitions, members)

        cb = make("B")
        members.append(("B", cb))

        def split():
            pa, pb = owned(ca), owned(cb)
            return pa and pb and not (pa & pb) and len(pa | pb) == a.partitions

        wait_for("partitions to be split between A and B", split, members)
        res["assignment_a"] = sorted(owned(ca))
        res["assignment_b"] = sorted(owned(cb))

        prod = ctx.producer()
        records = make_records("grp-" + ctx.run_id, a.records)
        want = produce(ctx, prod, a.topic, records)
        res["produced"] = len(want)

        v = Verifier(want)
        checked = 0

        def all_in():
            nonlocal checked
            for owner, m in collected[checked:]:
                v.add(owner, m)
            checked = len(collected)
            return v.done()

        while not all_in():
            if ctx.deadline - time.monotonic() < 0.2:
                raise Fail("timed out consuming: have %d of %d; events %s" % (len(v.seen), len(want), events))
            for name, c in members:
                poll(name, c)
                commit_retrying(ctx, c, name)
        # A moment more: catch stray duplicates, then final commits.
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            for name, c in members:
                poll(name, c)
        all_in()
        for name, c in members:
            commit_retrying(ctx, c, name)
        v.check()
        res["consumed"] = len(v.seen)
        res["records"] = len(v.seen)
        res["foreign"] = v.foreign
        res["consumed_by"] = {"A": v.per_owner.get("A", 0), "B": v.per_owner.get("B", 0)}
        if not (v.per_owner.get("A") and v.per_owner.get("B")):
            raise Fail("expected both members to consume records, got %s" % res["consumed_by"])

        # Committed offsets through the admin API == log end offsets.
        ends = end_offsets(ctx, admin, a.topic, a.partitions)
        fs = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=ctx.remaining(15)
        )
        got = fs[group].result(timeout=ctx.remaining(20))
        committed = {tp.partition: tp.offset for tp in got.topic_partitions if tp.topic == a.topic}
        mismatches = []
        for p, end in sorted(ends.items()):
            c = committed.get(p)
            if c != end:
                mismatches.append("p%d: committed %s, end %d" % (p, c, end))
        if mismatches:
            raise Fail("committed offsets do not match log end offsets: %s" % mismatches)
        res["committed_total"] = sum(committed.values())

        # The coordinator's view: two members, of the requested protocol.
        desc = admin.describe_consumer_groups([group], request_timeout=ctx.remaining(15))[group].result(
            timeout=ctx.remaining(20)
        )
        res["group_state"] = str(desc.state)
        gtype = getattr(desc, "type", None)
        res["group_type"] = str(gtype)
        if len(desc.members) != 2:
            raise Fail("group has %d members, expected 2" % len(desc.members))
        expected_type = "CONSUMER" if a.protocol == "consumer" else "CLASSIC"
        if gtype is not None and gtype.name != expected_type:
            raise Fail("group type is %s, expected %s" % (gtype.name, expected_type))
        listed = admin.list_consumer_groups(request_timeout=ctx.remaining(15)).result(timeout=ctx.remaining(20))
        if group not in {g.group_id for g in listed.valid}:
            raise Fail("group %s missing from ListGroups (%d listed)" % (group, len(listed.valid)))

        res["events"] = list(events)
        ctx.check_known("group-rebalance", admin, prod, ca, cb)
    finally:
        if cb is not None:
            cb.close()
        ca.close()


def admin_scenario(ctx, res):
    a = ctx.args
    admin = ctx.admin()

    md = admin.list_topics(timeout=ctx.remaining(15))
    brokers = [(b.id, b.host, b.port) for b in md.brokers.values()]
    res["broker_addrs"] = ctx.check_brokers("metadata", brokers)
    res["brokers"] = len(brokers)
    if a.expect_brokers and len(brokers) != a.expect_brokers:
        raise Fail("metadata reports %d brokers %s, expected %d" % (len(brokers), res["broker_addrs"], a.expect_brokers))

    dc = admin.describe_cluster(request_timeout=ctx.remaining(15)).result(timeout=ctx.remaining(20))
    nodes = [(n.id, n.host, n.port) for n in dc.nodes]
    res["describe_cluster_brokers"] = ctx.check_brokers("describe cluster", nodes)
    res["cluster_id"] = dc.cluster_id
    res["controller"] = dc.controller.id if dc.controller is not None else None
    if a.expect_brokers and len(nodes) != a.expect_brokers:
        raise Fail(
            "DescribeCluster reports %d brokers %s, expected %d" % (len(nodes), res["describe_cluster_brokers"], a.expect_brokers)
        )

    # A broker's own configs name its listeners: no forbidden port may show, and through Sluice
    # (forbid ports given) the listeners read as sensitive, without a value.
    broker_res = ConfigResource(ResourceType.BROKER, str(nodes[0][0]))
    entries = admin.describe_configs([broker_res], request_timeout=ctx.remaining(15))[broker_res].result(
        timeout=ctx.remaining(20)
    )
    for name, e in entries.items():
        for p in ctx.forbid:
            if e.value is not None and (":%d" % p) in e.value:
                raise Fail("describe configs (broker %d): %s = %s names a broker's own port" % (nodes[0][0], name, e.value))
    listeners = entries.get("listeners")
    if ctx.forbid and (listeners is None or listeners.value is not None or not listeners.is_sensitive):
        raise Fail("describe configs (broker %d): listeners should be withheld, got %r" % (nodes[0][0], listeners))
    if entries.get("num.network.threads") is None or entries["num.network.threads"].value is None:
        raise Fail("describe configs (broker %d): num.network.threads has no value" % nodes[0][0])
    res["broker_configs"] = len(entries)

    t1, t2 = a.topic + "-a", a.topic + "-b"
    fs = admin.create_topics(
        [NewTopic(t, num_partitions=a.partitions, replication_factor=a.replication_factor) for t in (t1, t2)],
        request_timeout=ctx.remaining(15),
    )
    for t, f in fs.items():
        try:
            f.result(timeout=ctx.remaining(20))
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise Fail("create topic %s: %s" % (t, e.args[0]))
    for t in (t1, t2):
        wait_topic_ready(ctx, admin, t, a.partitions)
    listed = admin.list_topics(timeout=ctx.remaining(15)).topics
    for t in (t1, t2):
        if t not in listed:
            raise Fail("topic %s missing from topic listing (%d topics listed)" % (t, len(listed)))
    res["topics_created"] = 2
    res["topic_names"] = [t1, t2]

    # A group that exists only through a committed offset; list it, read it back, delete it.
    group = "rdk-admin-" + ctx.run_id
    # This goes through a consumer (librdkafka's group machinery), not AdminClient
    # alter_consumer_group_offsets: on a fresh cluster this is the first use of the group
    # coordinator (__consumer_offsets is created on demand), the admin request times out, and
    # retrying it crashed librdkafka 2.16.0 (assertion `eonce->refcnt > 0' in rdkafka_queue.h).
    done = []

    def on_commit(err, partitions):
        done.append(err if err is not None else next((p.error for p in partitions if p.error), None))

    committer = ctx.consumer(**{"group.id": group, "enable.auto.commit": False, "on_commit": on_commit})
    try:
        while True:
            done.clear()
            committer.commit(offsets=[TopicPartition(t1, 0, 0)], asynchronous=True)
            while not done:
                committer.poll(ctx.remaining(0.2))
            err = done[0]
            if err is None:
                break
            transient = err.retriable() or err.code() in (
                KafkaError._TIMED_OUT,
                KafkaError.COORDINATOR_NOT_AVAILABLE,
                KafkaError.NOT_COORDINATOR,
                KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                KafkaError.UNKNOWN_TOPIC_OR_PART,
            )
            if not transient or ctx.deadline - time.monotonic() < 1:
                raise Fail("commit offsets for %s: %s" % (group, err))
            log("commit offsets for %s: %s (retrying)" % (group, err))
            time.sleep(0.5)
    finally:
        committer.close()
    while True:
        lg = admin.list_consumer_groups(request_timeout=ctx.remaining(15)).result(timeout=ctx.remaining(20))
        if lg.errors:
            log("list groups partial errors: %s" % lg.errors)
        if group in {g.group_id for g in lg.valid}:
            break
        if ctx.deadline - time.monotonic() < 0.3:
            raise Fail("group %s missing from ListGroups (%d listed)" % (group, len(lg.valid)))
        time.sleep(0.2)
    res["groups_listed"] = len(lg.valid)
    got = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=ctx.remaining(15)
    )[group].result(timeout=ctx.remaining(20))
    offs = {(x.topic, x.partition): x.offset for x in got.topic_partitions}
    if offs.get((t1, 0)) != 0:
        raise Fail("fetch offsets for %s: got %s, want %s[0]=0" % (group, offs, t1))
    admin.delete_consumer_groups([group], request_timeout=ctx.remaining(15))[group].result(timeout=ctx.remaining(20))

    fs = admin.delete_topics([t1, t2], request_timeout=ctx.remaining(15))
    for t, f in fs.items():
        try:
            f.result(timeout=ctx.remaining(20))
        except KafkaException as e:
            raise Fail("delete topic %s: %s" % (t, e.args[0]))
    while True:
        listed = admin.list_topics(timeout=ctx.remaining(15)).topics
        if t1 not in listed and t2 not in listed:
            break
        if ctx.deadline - time.monotonic() < 0.3:
            raise Fail("deleted topics still listed")
        time.sleep(0.2)
    res["topics_deleted"] = 2
    res["group"] = group
    ctx.check_known("admin", admin)


def idempotent(ctx, res):
    a = ctx.args
    admin = ctx.admin()
    ensure_topic(ctx, admin, a.topic)
    before = end_offsets(ctx, admin, a.topic, a.partitions)

    prod = ctx.producer(
        **{
            "enable.idempotence": True,
            "max.in.flight.requests.per.connection": 5,
            "batch.size": 16384,
            "statistics.interval.ms": 100,
        }
    )
    want = produce(ctx, prod, a.topic, make_records("idem-" + ctx.run_id, a.records))
    res["produced"] = len(want)
    # The producer id shows up in the statistics (eos.producer_id) once one was acquired.
    until = time.monotonic() + 3
    while not getattr(ctx, "producer_ids", None) and time.monotonic() < until:
        prod.poll(0.1)
    pids = sorted(getattr(ctx, "producer_ids", set()))
    res["producer_ids"] = pids
    if not pids:
        raise Fail("no producer id acquired: idempotence not in effect")

    after = end_offsets(ctx, admin, a.topic, a.partitions)
    per_part = {}
    for (_, p, o) in want.values():
        per_part.setdefault(p, []).append(o)
    for p, offs in per_part.items():
        offs.sort()
        if offs[0] != before[p] or after[p] - before[p] != len(offs):
            raise Fail(
                "partition %d: %d records at offsets %d..%d, but the log went from %d to %d"
                % (p, len(offs), offs[0], offs[-1], before[p], after[p])
            )
        if offs != list(range(offs[0], offs[0] + len(offs))):
            raise Fail("partition %d: offsets not contiguous" % p)

    cons = ctx.consumer(**{"group.id": "rdk-idem-" + ctx.run_id, "enable.auto.commit": False})
    cons.subscribe([a.topic])
    try:
        v = Verifier(want)
        consume_all(ctx, cons, "consumer", v)
        res["consumed"] = len(v.seen)
        v.check()
        res["records"] = len(v.seen)
        ctx.check_known("idempotent", admin, prod, cons)
    finally:
        cons.close()


def transactional(ctx, res):
    a = ctx.args
    admin = ctx.admin()
    ensure_topic(ctx, admin, a.topic)
    txn_id = "rdk-txn-" + ctx.run_id
    res["transactional_id"] = txn_id
    prod = ctx.producer(**{"transactional.id": txn_id, "transaction.timeout.ms": 30000})
    prod.init_transactions(ctx.remaining(30))

    spread = lambda i: i % a.partitions  # noqa: E731
    half = a.records // 2

    def txn(name, records, commit):
        prod.begin_transaction()
        try:
            d = produce(ctx, prod, a.topic, records, partition_of=spread)
        except Exception:
            prod.abort_transaction(ctx.remaining(30))
            raise
        try:
            if commit:
                prod.commit_transaction(ctx.remaining(30))
            else:
                prod.abort_transaction(ctx.remaining(30))
        except KafkaException as e:
            raise Fail("%s: end transaction: %s" % (name, e.args[0]))
        return d

    committed1 = txn("txn 1 (commit)", make_records("txc-" + ctx.run_id, half), True)
    aborted = txn("txn 2 (abort)", make_records("txa-" + ctx.run_id, a.records - half), False)
    # A last committed transaction on every partition: seeing it proves a read_committed reader
    # went past the aborted range.
    committed2 = txn("txn 3 (commit)", make_records("txz-" + ctx.run_id, a.partitions), True)
    want = dict(committed1)
    want.update(committed2)
    res["committed"] = len(want)
    res["aborted"] = len(aborted)

    rc = ctx.consumer(
        **{"group.id": "rdk-txn-rc-" + ctx.run_id, "isolation.level": "read_committed", "enable.auto.commit": False}
    )
    rc.subscribe([a.topic])
    try:
        v = Verifier(want)
        aborted_seen = 0
        while not v.done():
            for m in rc.consume(num_messages=1000, timeout=ctx.remaining(1.0)):
                if check_msg_error("read_committed", m):
                    continue
                if m.key().decode() in aborted:
                    aborted_seen += 1
                v.add("read_committed", m)
        res["read_committed_consumed"] = len(v.seen)
        if aborted_seen:
            raise Fail("read_committed consumer saw %d aborted records" % aborted_seen)
        v.check()
    finally:
        rc.close()

    everything = dict(want)
    everything.update(aborted)
    ru = ctx.consumer(
        **{"group.id": "rdk-txn-ru-" + ctx.run_id, "isolation.level": "read_uncommitted", "enable.auto.commit": False}
    )
    ru.subscribe([a.topic])
    try:
        vu = Verifier(everything)
        consume_all(ctx, ru, "read_uncommitted", vu)
        res["read_uncommitted_consumed"] = len(vu.seen)
        vu.check()
        ctx.check_known("transactional", admin, prod, ru)
    finally:
        ru.close()


def produce_expect(ctx, res):
    """Produces --records with --producer-props (k=v;k=v) and checks every delivery report
    against --expect: "ok" (all delivered) or a Kafka error name (every record fails with it)."""
    a = ctx.args
    admin = ctx.admin()
    ensure_topic(ctx, admin, a.topic)
    extra = {}
    for kv in filter(None, a.producer_props.split(";")):
        k, _, v = kv.partition("=")
        extra[k.strip()] = v.strip()
    # A rejected request is not retried (POLICY_VIOLATION is not retriable); keep it quick.
    extra.setdefault("message.timeout.ms", "20000")
    prod = ctx.producer(**extra)
    reports = []

    def on_delivery(err, msg):
        reports.append(err)

    for k, v in make_records("pe-" + ctx.run_id, a.records):
        prod.produce(a.topic, key=k, value=v, on_delivery=on_delivery)
        prod.poll(0)
    while prod.flush(ctx.remaining(1.0)) != 0:
        pass
    if len(reports) != a.records:
        raise Fail("%d delivery reports for %d records" % (len(reports), a.records))
    failed = [e for e in reports if e is not None]
    res["delivered"] = len(reports) - len(failed)
    res["failed"] = len(failed)
    if a.expect == "ok":
        if failed:
            raise Fail("%d records failed, first: %s" % (len(failed), failed[0]))
        return
    if len(failed) != a.records:
        raise Fail("%d of %d records delivered, expected all to fail with %s" % (res["delivered"], a.records, a.expect))
    names = sorted({e.name() for e in failed})
    res["errors"] = names
    if names != [a.expect]:
        raise Fail("errors %s, expected %s" % (names, a.expect))
    # librdkafka reports the error code's own text ("Broker: Policy violation"), not the
    # partition's error_message; the harness checks which rule fired on Sluice's side.
    res["message"] = failed[0].str()


def expect_outcome(ctx, res, what, fut):
    """Waits for an admin future and checks its outcome ("ok" or the error name) against
    --expect; records outcome and message in res."""
    try:
        fut.result(timeout=ctx.remaining(20))
        outcome = "ok"
    except KafkaException as e:
        err = e.args[0]
        outcome = err.name()
        res["message"] = err.str()
    res["outcome"] = outcome
    if outcome != ctx.args.expect:
        raise Fail("%s: %s (%s), expected %s" % (what, outcome, res.get("message"), ctx.args.expect))


def delete_topic_expect(ctx, res):
    """Creates --topic, deletes it and checks the outcome against --expect: "ok" or the Kafka
    error name the deletion must fail with."""
    a = ctx.args
    admin = ctx.admin()
    ensure_topic(ctx, admin, a.topic)
    fut = admin.delete_topics([a.topic], operation_timeout=10, request_timeout=15)[a.topic]
    expect_outcome(ctx, res, "delete_topics", fut)


def create_topic_expect(ctx, res):
    """Creates --topic with --partitions, --rf and --configs (k=v;k=v) and checks the outcome
    against --expect: "ok" or the Kafka error name the creation must fail with."""
    a = ctx.args
    admin = ctx.admin()
    configs = {}
    for kv in filter(None, a.configs.split(";")):
        k, _, v = kv.partition("=")
        configs[k.strip()] = v.strip()
    nt = NewTopic(a.topic, num_partitions=a.partitions, replication_factor=a.replication_factor,
                  config=configs)
    fut = admin.create_topics([nt], request_timeout=ctx.remaining(15))[a.topic]
    expect_outcome(ctx, res, "create_topics", fut)


def client_id_expect(ctx, res):
    """Asks for the cluster's metadata with --client-id and checks the outcome against --expect:
    "ok", or a Kafka error name that the call or the client's error callback must report (a
    gateway that refuses the client id answers ApiVersions with an error and closes the
    connection; librdkafka reports that through its error callback and the call times out)."""
    a = ctx.args
    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger = logging.getLogger("librdkafka-client-id")
    logger.addHandler(Collect())
    logger.setLevel(logging.DEBUG)
    admin = AdminClient(ctx.base_conf(logger=logger))
    try:
        md = admin.list_topics(timeout=8 if a.expect != "ok" else ctx.remaining(15))
        outcome = "ok"
        res["brokers"] = len(md.brokers)
    except KafkaException as e:
        outcome = e.args[0].name()
        res["message"] = e.args[0].str()
    res["outcome"] = outcome
    admin.poll(0.5)  # serves the error and log callbacks queued meanwhile
    with ctx.lock:
        errs = list(getattr(ctx, "errors", []))
    res["client_errors"] = sorted({"%s: %s" % (e.name(), e.str()) for e in errs})
    # librdkafka's own log lines about the ApiVersions exchange, without the broker prefix.
    res["client_log"] = sorted({l.split(": ", 1)[-1].split(" (after ")[0] for l in lines if "ApiVersion" in l})[:5]
    if a.expect == "ok":
        if outcome != "ok":
            raise Fail("list_topics: %s (%s), expected ok" % (outcome, res.get("message")))
        return
    if outcome == "ok":
        raise Fail("list_topics succeeded, expected %s" % a.expect)
    seen = {outcome} | {e.name() for e in errs}
    if a.expect not in seen:
        raise Fail("expected %s, saw %s (%s)" % (a.expect, sorted(seen), res["client_errors"]))


def alter_config_expect(ctx, res):
    """Creates --topic, sets --configs (k=v;k=v) on it with IncrementalAlterConfigs (SET), or with
    the legacy AlterConfigs with --legacy, and checks the outcome against --expect: "ok" (then
    every value is read back with DescribeConfigs) or the Kafka error name."""
    a = ctx.args
    admin = ctx.admin()
    ensure_topic(ctx, admin, a.topic)
    configs = {}
    for kv in filter(None, a.configs.split(";")):
        k, _, v = kv.partition("=")
        configs[k.strip()] = v.strip()
    if a.legacy:
        res_ = ConfigResource(ResourceType.TOPIC, a.topic, set_config=configs)
        fut = admin.alter_configs([res_], request_timeout=ctx.remaining(15))[res_]
    else:
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()]
        res_ = ConfigResource(ResourceType.TOPIC, a.topic, incremental_configs=entries)
        fut = admin.incremental_alter_configs([res_], request_timeout=ctx.remaining(15))[res_]
    expect_outcome(ctx, res, "alter configs", fut)
    if a.expect != "ok":
        return
    # Brokers apply a config change from the metadata log asynchronously: read back until every
    # value shows (or the deadline).
    while True:
        got = admin.describe_configs([ConfigResource(ResourceType.TOPIC, a.topic)],
                                     request_timeout=ctx.remaining(15))
        values = list(got.values())[0].result(timeout=ctx.remaining(20))
        wrong = ["%s=%r" % (k, values[k].value) for k, v in configs.items() if values[k].value != v]
        if not wrong:
            break
        if ctx.deadline - time.monotonic() < 1:
            raise Fail("configs after the change: %s, expected %s" % (wrong, configs))
        time.sleep(0.2)
    res["applied"] = sorted(configs)


def delete_records_expect(ctx, res):
    """Creates --topic, deletes its records before offset 0 on partition 0 and checks the outcome
    against --expect: "ok" or the Kafka error name."""
    a = ctx.args
    admin = ctx.admin()
    ensure_topic(ctx, admin, a.topic)
    # librdkafka's admin client may route the request by metadata older than the new topic's
    # leadership: retry what a broker calls retriable (a new topic settling), then judge.
    settling = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                KafkaError.UNKNOWN_TOPIC_OR_PART)
    for _ in range(20):
        fut = admin.delete_records([TopicPartition(a.topic, 0, 0)], request_timeout=ctx.remaining(15))
        fut = list(fut.values())[0]
        try:
            fut.result(timeout=ctx.remaining(20))
            break
        except KafkaException as e:
            if e.args[0].code() not in settling or e.args[0].name() == a.expect:
                break
            log("delete_records: %s, retrying" % e.args[0])
            time.sleep(0.5)
    expect_outcome(ctx, res, "delete_records", fut)


def wait_full_isr(ctx, admin, topic, partitions, rf):
    """Waits until every partition of topic has a leader and all rf replicas in sync; returns the
    topic's partition metadata."""
    last = "?"
    while True:
        try:
            md = admin.list_topics(topic=topic, timeout=ctx.remaining(5))
            ctx.check_brokers("metadata", [(b.id, b.host, b.port) for b in md.brokers.values()])
            t = md.topics.get(topic)
            if t is None:
                last = "missing from metadata"
            elif t.error is not None:
                last = str(t.error)
            elif len(t.partitions) != partitions:
                last = "%d partitions" % len(t.partitions)
            else:
                bad = [
                    "p%d: leader %d, isr %s, error %s" % (p.id, p.leader, p.isrs, p.error)
                    for p in t.partitions.values()
                    if p.leader < 0 or p.error is not None or len(p.isrs) != rf
                ]
                if not bad:
                    return t.partitions
                last = "; ".join(bad)
        except KafkaException as e:
            last = str(e)
        if ctx.deadline - time.monotonic() < 0.3:
            raise Fail("topic %s not ready (full ISR): %s" % (topic, last))
        time.sleep(0.1)


def leader_change(ctx, res):
    """Produces continuously (idempotent, acks=all, unlimited retries) to an RF=3 topic while the
    harness stops the leader of partition 0: prints {"leader":N} once 300 records are acked, waits
    for "go" on stdin (sent once that broker is down), keeps producing until partition 0 has taken
    --records-after/partitions acks of records produced after "go" (so from another leader), then
    checks that every record was acked, that each partition's log holds exactly the acked records
    (offsets 0..n-1: no duplicates, no gaps) and that a consumer reads every one of them back where
    its delivery report put it."""
    a = ctx.args
    rf = a.replication_factor
    admin = ctx.admin()
    fs = admin.create_topics(
        [
            NewTopic(
                a.topic,
                num_partitions=a.partitions,
                replication_factor=rf,
                config={"min.insync.replicas": "2"},
            )
        ],
        request_timeout=ctx.remaining(15),
    )
    try:
        fs[a.topic].result(timeout=ctx.remaining(20))
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise Fail("create topic %s: %s" % (a.topic, e.args[0]))
    leader = wait_full_isr(ctx, admin, a.topic, a.partitions, rf)[0].leader
    res["old_leader"] = leader

    prod = ctx.producer(
        **{
            "enable.idempotence": True,
            "message.timeout.ms": 120000,
            "request.timeout.ms": 10000,
            "retry.backoff.ms": 100,
        }
    )
    prefix = "lc-" + ctx.run_id
    lock = threading.Lock()
    acked = {}  # key -> (value, partition, offset)
    state = {"sent": 0, "failures": 0, "first_error": None, "p0_after_go": 0, "bg_error": None}
    go = threading.Event()
    stop = threading.Event()

    def record(i):
        return "%s-k-%07d" % (prefix, i), "%s-v-%07d-%s" % (prefix, i, "x" * (i % 64))

    def on_delivery(after_go):
        def cb(err, msg):
            with lock:
                if err is not None:
                    state["failures"] += 1
                    if state["first_error"] is None:
                        state["first_error"] = err
                    return
                acked[msg.key().decode()] = (msg.value().decode(), msg.partition(), msg.offset())
                if after_go and msg.partition() == 0:
                    state["p0_after_go"] += 1

        return cb

    def producer_loop():
        # produce() and poll() (which serves the delivery callbacks) from this one thread.
        i = 0
        try:
            while not stop.is_set():
                k, v = record(i)
                cb = on_delivery(go.is_set())
                while True:
                    try:
                        prod.produce(a.topic, key=k, value=v, partition=i % a.partitions, on_delivery=cb)
                        break
                    except BufferError:
                        if stop.is_set():
                            return
                        prod.poll(0.1)
                i += 1
                with lock:
                    state["sent"] = i
                prod.poll(0)
                time.sleep(0.002)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            with lock:
                state["bg_error"] = "%s: %s" % (type(e).__name__, e)

    def wait_for(what, cond):
        while True:
            with lock:
                if cond():
                    return
                if state["first_error"] is not None:
                    raise Fail("send failed while waiting for %s: %s" % (what, state["first_error"]))
                if state["bg_error"] is not None:
                    raise Fail("producer thread failed while waiting for %s: %s" % (what, state["bg_error"]))
            fatal = getattr(ctx, "fatal", None)
            if fatal is not None:
                raise Fail("fatal client error while waiting for %s: %s" % (what, fatal))
            if ctx.deadline - time.monotonic() < 0.1:
                with lock:
                    raise Fail("timed out waiting for %s (sent %d, acked %d)" % (what, state["sent"], len(acked)))
            time.sleep(0.02)

    bg = threading.Thread(target=producer_loop, name="producer", daemon=True)
    bg.start()
    try:
        wait_for("300 acks before the leader change", lambda: len(acked) >= 300)
        with lock:
            res["acked_before_go"] = len(acked)
        sys.stdout.write(json.dumps({"leader": leader}, separators=(",", ":")) + "\n")
        sys.stdout.flush()

        got_line = []
        line_read = threading.Event()

        def read_stdin():
            got_line.append(sys.stdin.readline())
            line_read.set()

        threading.Thread(target=read_stdin, name="stdin", daemon=True).start()
        while not line_read.wait(0.1):
            ctx.remaining()  # fails past the deadline
        if got_line[0].strip() != "go":
            raise Fail("expected 'go' on stdin, got %r" % got_line[0])
        go.set()
        go_at = time.monotonic()
        after = max(1, a.records_after // a.partitions)
        wait_for("%d partition 0 acks from the new leader" % after, lambda: state["p0_after_go"] >= after)
        res["recovery_ms"] = int((time.monotonic() - go_at) * 1000)
    finally:
        stop.set()
        bg.join(10)
    while prod.flush(ctx.remaining(1.0)) > 0:
        pass
    with lock:
        sent, failures, first_error = state["sent"], state["failures"], state["first_error"]
        want = dict(acked)
        res["partition0_acked_after"] = state["p0_after_go"]
    res["sent"] = sent
    res["acked"] = len(want)
    if bg.is_alive():
        raise Fail("producer thread did not stop")
    if failures:
        raise Fail("%d of %d sends failed, first: %s" % (failures, sent, first_error))
    if len(want) != sent:
        raise Fail("%d sent but %d acked" % (sent, len(want)))
    fatal = getattr(ctx, "fatal", None)
    if fatal is not None:
        raise Fail("fatal client error: %s" % fatal)

    # Partition 0 now has another leader, learned through the gateway.
    last = "?"
    while True:
        md = admin.list_topics(topic=a.topic, timeout=ctx.remaining(5))
        ctx.check_brokers("metadata after the change", [(b.id, b.host, b.port) for b in md.brokers.values()])
        t = md.topics.get(a.topic)
        p0 = t.partitions.get(0) if t is not None else None
        if p0 is not None and p0.error is None and p0.leader >= 0:
            if p0.leader == leader:
                raise Fail("partition 0 is still led by stopped broker %d" % leader)
            res["new_leader"] = p0.leader
            break
        last = "partition 0: %s" % (p0.error if p0 is not None else "missing")
        if ctx.deadline - time.monotonic() < 0.3:
            raise Fail("partition 0 has no leader after the change: %s" % last)
        time.sleep(0.1)

    # Idempotence: each partition's log is exactly the acked records, offsets 0..n-1.
    per_part = {}
    for (_, p, o) in want.values():
        per_part.setdefault(p, []).append(o)
    ends = end_offsets(ctx, admin, a.topic, a.partitions)
    res["end_offsets"] = [ends[p] for p in sorted(ends)]
    for p in range(a.partitions):
        offs = sorted(per_part.get(p, []))
        if offs != list(range(len(offs))):
            raise Fail("partition %d: acked offsets are not 0..%d (duplicates or gaps)" % (p, len(offs) - 1))
        if ends[p] != len(offs):
            raise Fail(
                "partition %d: log end offset %d but %d records acked (duplicates in the log?)" % (p, ends[p], len(offs))
            )

    cons = ctx.consumer(**{"group.id": "rdk-lc-" + ctx.run_id, "enable.auto.commit": False})
    cons.subscribe([a.topic])
    try:
        v = Verifier(want)
        consume_all(ctx, cons, "consumer", v)
        res["consumed"] = len(v.seen)
        res["foreign"] = v.foreign
        v.check()
        ctx.check_known("leader-change", admin, prod, cons)
    finally:
        cons.close()
    res["producer_ids"] = sorted(getattr(ctx, "producer_ids", set()))


# ---------------------------------------------------------------------------------------------


class ArgParser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write("librdkafka-scenario: %s\n" % message)
        sys.exit(2)


def topic_map(ctx, res):
    """--topic is an alias of --upstream, --hidden is hidden ([policy.topics]); both upstream topics
    exist. Metadata lists the alias, never the upstream topic nor the hidden one; the hidden one is
    unknown when asked for; records produced to the alias are consumed through it by a group that
    commits, and the committed offsets, read back under the alias, equal its end offsets."""
    a = ctx.args
    if not a.upstream or not a.hidden:
        raise Fail("--upstream and --hidden are required")
    admin = ctx.admin()
    partitions = wait_topic_ready(ctx, admin, a.topic)
    names = set(admin.list_topics(timeout=ctx.remaining(10)).topics)
    res["listed"] = len(names)
    if a.topic not in names:
        raise Fail("metadata lacks the alias %s: %s" % (a.topic, sorted(names)))
    for t in (a.upstream, a.hidden):
        if t in names:
            raise Fail("metadata lists %s, which must be invisible" % t)
    for t in (a.upstream, a.hidden):
        md = admin.list_topics(topic=t, timeout=ctx.remaining(10)).topics.get(t)
        code = md.error.code() if md is not None and md.error is not None else None
        if code != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise Fail("metadata for %s: %s, expected UNKNOWN_TOPIC_OR_PART" % (t, md and md.error))
    prod = ctx.producer()
    want = produce(ctx, prod, a.topic, make_records("tm-" + ctx.run_id, a.records))
    res["produced"] = len(want)
    cons = ctx.consumer(**{"group.id": "rdk-tm-" + ctx.run_id})
    cons.subscribe([a.topic])
    try:
        v = Verifier(want)
        consume_all(ctx, cons, "consumer", v)
        v.check()
        res["records"] = len(v.seen)
        commit_retrying(ctx, cons, "consumer")
        tps = [TopicPartition(a.topic, p) for p in range(partitions)]
        committed = cons.committed(tps, timeout=ctx.remaining(15))
    finally:
        cons.close()
    ends = end_offsets(ctx, admin, a.topic, partitions)
    got = {tp.partition: tp.offset for tp in committed if tp.topic == a.topic}
    res["committed"] = sum(got.values())
    if got != ends:
        raise Fail("committed offsets %s under the alias differ from its end offsets %s" % (got, ends))


def main():
    p = ArgParser(prog="scenario.py", description="librdkafka scenario client")
    p.add_argument("scenario", choices=SCENARIOS)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--forbid-ports", default="")
    p.add_argument("--protocol", choices=("classic", "consumer"), default="classic")
    p.add_argument("--partitions", type=int, default=None, help="default: 3 for leader-change, else 6")
    p.add_argument("--replication-factor", "--rf", dest="replication_factor", type=int, default=3)
    p.add_argument(
        "--expect-brokers", "--brokers", dest="expect_brokers", type=int, default=3,
        help="admin: brokers the cluster must report (0: no check)",
    )
    p.add_argument(
        "--records-after", type=int, default=300,
        help="leader-change: records acked after 'go' (over all partitions) before stopping",
    )
    p.add_argument("--configs", default="", help="create-topic-expect: topic configs, k=v;k=v")
    p.add_argument("--producer-props", default="", help="produce-expect: producer settings, k=v;k=v")
    p.add_argument("--expect", default="ok", help="produce-expect: ok, or the Kafka error name every record must fail with")
    p.add_argument("--upstream", default="", help="topic-map: the upstream topic --topic aliases")
    p.add_argument("--hidden", default="", help="topic-map: a hidden topic")
    p.add_argument("--client-id", default="librdkafka-scenario", help="client.id of every client")
    p.add_argument("--legacy", action="store_true", help="alter-config-expect: legacy AlterConfigs")
    p.add_argument("--timeout", type=float, default=60.0, help="overall scenario deadline, seconds")
    p.add_argument("--timeout-ms", type=int, default=0, help="deadline in milliseconds (overrides --timeout)")
    p.add_argument("--sasl-mechanism", default="", help="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_PLAINTEXT); empty: no SASL")
    p.add_argument("--sasl-username", default="")
    p.add_argument("--sasl-password", default="")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    if args.records <= 0:
        p.error("--records must be positive")
    if args.partitions is None:
        args.partitions = 3 if args.scenario == "leader-change" else 6
    if args.timeout_ms > 0:
        args.timeout = args.timeout_ms / 1000.0
    try:
        ctx = Ctx(args)
    except ValueError as e:
        p.error("bad --forbid-ports: %s" % e)

    res = {
        "scenario": args.scenario,
        "client": "librdkafka",
        "librdkafka": libversion()[0],
        "confluent_kafka": version()[0] if isinstance(version(), tuple) else version(),
    }

    def watchdog():
        log("watchdog: scenario %r did not finish within %ss" % (args.scenario, args.timeout + 15))
        res.update(ok=False, error="watchdog timeout")
        emit(res)
        os._exit(3)

    wd = threading.Timer(args.timeout + 15, watchdog)
    wd.daemon = True
    wd.start()

    run = {
        "produce-consume": produce_consume,
        "group-rebalance": group_rebalance,
        "admin": admin_scenario,
        "idempotent": idempotent,
        "transactional": transactional,
        "leader-change": leader_change,
        "produce-expect": produce_expect,
        "delete-topic-expect": delete_topic_expect,
        "create-topic-expect": create_topic_expect,
        "topic-map": topic_map,
        "client-id-expect": client_id_expect,
        "alter-config-expect": alter_config_expect,
        "delete-records-expect": delete_records_expect,
    }[args.scenario]
    start = time.monotonic()
    try:
        run(ctx, res)
        fatal = getattr(ctx, "fatal", None)
        if fatal is not None:
            raise Fail("fatal client error: %s" % fatal)
        err = None
    except Fail as e:
        err = str(e)
    except Exception as e:  # noqa: BLE001 - report anything as a failure, with its type and place
        frames = traceback.extract_tb(e.__traceback__)
        here = [f for f in frames if f.filename == __file__] or frames
        where = " at line %d (%s: %s)" % (here[-1].lineno, here[-1].name, (here[-1].line or "").strip()) if here else ""
        if isinstance(e, KafkaException):
            err = "kafka error: %s%s" % (e.args[0], where)
        elif isinstance(e, TimeoutError):
            err = "timed out%s" % where
        else:
            err = "%s: %s%s" % (type(e).__name__, e, where)
    res["elapsed_ms"] = int((time.monotonic() - start) * 1000)
    res["known_brokers"] = ctx.known_addrs()
    if err is not None:
        res.update(ok=False, error=err)
        emit(res)
        log("%s: FAILED: %s" % (args.scenario, err))
        sys.stdout.flush()
        os._exit(1)  # don't wait on client threads that may still be retrying
    res["ok"] = True
    emit(res)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
