"""Rill interop, consumer groups: Python stubs generated from proto/ consume in a group.

Usage: /usr/bin/python3 python_group_client.py ADDRESS GENERATED_DIR TOPIC GROUP TOTAL

  ADDRESS        the broker's gRPC address, HOST:PORT
  GENERATED_DIR  where `protoc --python_out --grpc_python_out` wrote rill/v1/*_pb2*.py
  TOPIC          a topic that already holds TOTAL records (written by the test)
  GROUP          a group id with no committed offsets yet
  TOTAL          how many records TOPIC holds

Only generated stubs (rill.v1.group_service_pb2_grpc.GroupServiceStub) and messages are used;
there is no hand-written protocol code. Steps, each checked here:

  1. Consume: subscribe (AUTO_OFFSET_RESET_EARLIEST, RECORD_FORMAT_RECORDS). The first answer is
     an assignment with a member id; every partition of TOPIC is assigned (the only member).
  2. Process PROCESSED records, committing each one on the stream (`commit` with the next offset
     and a commit_id; the matching `commit_result` has no error), then read UNCOMMITTED more
     without committing them, then disconnect (half-close: the broker removes the member).
  3. FetchOffsets and DescribeGroups: the committed offsets are what was committed; the group
     has no members.
  4. Reconnect with a new Consume stream: every partition starts exactly at its committed offset,
     so the UNCOMMITTED records come again and no committed one does. Read to the end,
     committing, and disconnect.
  5. FetchOffsets: every partition is committed to its end; DescribeGroups: lag 0.

On success prints one JSON line (the report) and exits 0. On failure prints
`python_group_client: FAILED at <step>: <what>` to stderr and exits 1 (2 for bad usage or
missing modules).
"""

import json
import queue
import sys
import time

CALL_TIMEOUT_S = 10.0
STREAM_TIMEOUT_S = 60.0
PROCESSED = 10
UNCOMMITTED = 4


class CheckFailed(Exception):
    """A check on the broker's answer did not hold."""


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


class ConsumeSession:
    """One Consume stream: requests from a queue, responses read by the caller."""

    def __init__(self, stub, group_pb, common_pb, subscribe):
        self.group_pb = group_pb
        self.requests = queue.Queue()
        self.requests.put(group_pb.ConsumeRequest(subscribe=subscribe))
        self.responses = stub.Consume(self._request_iter(), timeout=STREAM_TIMEOUT_S)
        self.next_commit_id = 1
        self.member_id = ""
        self.member_epoch = 0
        self.owned = set()
        self.pending = []  # records received, not yet handed out

    def _request_iter(self):
        while True:
            req = self.requests.get()
            if req is None:
                return
            yield req

    def _next_response(self):
        try:
            return next(self.responses)
        except StopIteration:
            raise CheckFailed("the broker ended the Consume stream unexpectedly")

    def _apply(self, resp):
        kind = resp.WhichOneof("kind")
        if kind == "assignment":
            a = resp.assignment
            self.member_id = a.member_id
            self.member_epoch = a.member_epoch
            for tp in a.revoked:
                self.owned.discard((tp.topic, tp.partition))
            for tp in a.assigned:
                self.owned.add((tp.topic, tp.partition))
        elif kind == "records":
            r = resp.records
            check((r.topic, r.partition) in self.owned,
                  "records of %s-%d, which is not assigned (owned %s)" % (r.topic, r.partition, sorted(self.owned)))
            offsets = [cr.offset for cr in r.records]
            check(offsets == sorted(offsets), "records of %s-%d out of order: %s" % (r.topic, r.partition, offsets))
            if offsets:
                check(r.next_offset == offsets[-1] + 1,
                      "records of %s-%d: next_offset %d after offset %d" % (r.topic, r.partition, r.next_offset, offsets[-1]))
            self.pending.extend(r.records)
        return kind

    def wait_assignment(self, want_partitions):
        while len(self.owned) < want_partitions:
            kind = self._apply(self._next_response())
            check(kind in ("assignment", "records"), "unexpected %s before the assignment" % kind)
        check(self.member_id != "", "the assignment carries no member id")

    def next_record(self):
        while not self.pending:
            kind = self._apply(self._next_response())
            check(kind != "commit_result", "a commit_result nobody asked for")
        return self.pending.pop(0)

    def commit(self, topic, partition, offset):
        commit_id = self.next_commit_id
        self.next_commit_id += 1
        self.requests.put(self.group_pb.ConsumeRequest(commit=self.group_pb.ConsumeRequest.Commit(
            commit_id=commit_id,
            offsets=[self.group_pb.OffsetCommit(topic=topic, partition=partition, offset=offset, leader_epoch=-1)])))
        while True:
            resp = self._next_response()
            if self._apply(resp) != "commit_result":
                continue
            cr = resp.commit_result
            check(cr.commit_id == commit_id, "commit_result %d for commit %d" % (cr.commit_id, commit_id))
            check(not cr.HasField("error"), "commit %s-%d@%d failed: %s %s" % (topic, partition, offset, cr.error.name, cr.error.message))
            check(len(cr.offsets) == 1, "commit_result has %d offsets for 1" % len(cr.offsets))
            r = cr.offsets[0]
            check(not r.HasField("error"), "commit %s-%d@%d refused: %s %s" % (topic, partition, offset, r.error.name, r.error.message))
            check((r.topic, r.partition, r.offset) == (topic, partition, offset),
                  "commit_result for %s-%d@%d, committed %s-%d@%d" % (r.topic, r.partition, r.offset, topic, partition, offset))
            return

    def disconnect(self):
        """Half-close; the broker removes the member and ends its side."""
        self.requests.put(None)
        deadline = time.monotonic() + CALL_TIMEOUT_S
        for resp in self.responses:
            # Records in flight may still arrive; the stream must end soon.
            check(time.monotonic() < deadline, "the stream did not end within %.0f s of the half-close" % CALL_TIMEOUT_S)


def main():
    args = sys.argv[1:]
    if len(args) != 5:
        print("usage: python_group_client.py ADDRESS GENERATED_DIR TOPIC GROUP TOTAL", file=sys.stderr)
        return 2
    address, gen_dir, topic, group, total = args[0], args[1], args[2], args[3], int(args[4])
    sys.path.insert(0, gen_dir)
    try:
        import grpc
        import google.protobuf
    except ImportError as e:
        print("python_group_client: FAILED: cannot import grpc/google.protobuf (%s) with %s; "
              "run scripts/install-test-deps.sh" % (e, sys.executable), file=sys.stderr)
        return 2
    try:
        from rill.v1 import admin_service_pb2 as admin_pb
        from rill.v1 import admin_service_pb2_grpc as admin_grpc
        from rill.v1 import common_pb2 as common_pb
        from rill.v1 import group_service_pb2 as group_pb
        from rill.v1 import group_service_pb2_grpc as group_grpc
    except ImportError as e:
        print("python_group_client: FAILED: cannot import the generated stubs from %s (%s)" % (gen_dir, e), file=sys.stderr)
        return 2

    started = time.monotonic()
    step = ["start"]
    report = {"ok": False, "python": sys.version.split()[0], "grpcio": grpc.__version__,
              "protobuf": google.protobuf.__version__, "topic": topic, "group": group}
    try:
        channel = grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)])
        step[0] = "connect"
        grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT_S)
        admin = admin_grpc.AdminServiceStub(channel)
        groups = group_grpc.GroupServiceStub(channel)

        d = admin.DescribeTopics(admin_pb.DescribeTopicsRequest(topics=[topic], exclude_configs=True), timeout=CALL_TIMEOUT_S)
        check(len(d.topics) == 1 and not d.topics[0].HasField("error"), "DescribeTopics %s: %s" % (topic, d))
        partitions = len(d.topics[0].partitions)
        ends = {p.partition: p.high_watermark for p in d.topics[0].partitions}
        check(sum(ends.values()) == total, "%s holds %d records, want %d" % (topic, sum(ends.values()), total))
        check(total >= PROCESSED + UNCOMMITTED + partitions, "TOTAL %d is too small" % total)

        def subscribe():
            return group_pb.ConsumeRequest.Subscribe(
                group_id=group, topics=[topic], auto_offset_reset=group_pb.AUTO_OFFSET_RESET_EARLIEST,
                max_outstanding_records=1000, format=common_pb.RECORD_FORMAT_RECORDS, client_id="python-interop")

        # 1-2. consume, commit each processed record, read some more, disconnect ---------------
        step[0] = "first Consume: join"
        s1 = ConsumeSession(groups, group_pb, common_pb, subscribe())
        s1.wait_assignment(partitions)
        check(s1.owned == {(topic, p) for p in range(partitions)},
              "the only member owns %s, want every partition of %s" % (sorted(s1.owned), topic))
        first_member = s1.member_id
        step[0] = "first Consume: process and commit"
        committed = {}
        phase_a = []
        for _ in range(PROCESSED):
            r = s1.next_record()
            phase_a.append({"partition": r.partition, "offset": r.offset, "key": r.key.decode(), "value": r.value.decode(), "committed": True})
            s1.commit(topic, r.partition, r.offset + 1)
            committed[r.partition] = r.offset + 1
        step[0] = "first Consume: read without committing"
        for _ in range(UNCOMMITTED):
            r = s1.next_record()
            phase_a.append({"partition": r.partition, "offset": r.offset, "key": r.key.decode(), "value": r.value.decode(), "committed": False})
        step[0] = "first Consume: disconnect"
        s1.disconnect()

        # 3. what the broker kept ----------------------------------------------------------------
        step[0] = "FetchOffsets after disconnect"
        f = groups.FetchOffsets(group_pb.FetchOffsetsRequest(group_id=group), timeout=CALL_TIMEOUT_S)
        fetched = {o.partition: o.offset for o in f.offsets if o.topic == topic}
        check(fetched == committed, "FetchOffsets %s, committed %s" % (fetched, committed))
        step[0] = "DescribeGroups after disconnect"
        for _ in range(50):
            dg = groups.DescribeGroups(group_pb.DescribeGroupsRequest(group_ids=[group]), timeout=CALL_TIMEOUT_S)
            g = dg.groups[0]
            check(not g.HasField("error"), "DescribeGroups %s: %s" % (group, g.error.message))
            if len(g.members) == 0:
                break
            time.sleep(0.1)
        check(len(g.members) == 0, "the group still has members %s after the disconnect" % [m.member_id for m in g.members])
        check(g.state == group_pb.GROUP_STATE_EMPTY, "group state %s, want EMPTY" % group_pb.GroupState.Name(g.state))

        # 4. reconnect: resume after the last commit ---------------------------------------------
        step[0] = "second Consume: join"
        s2 = ConsumeSession(groups, group_pb, common_pb, subscribe())
        s2.wait_assignment(partitions)
        step[0] = "second Consume: read to the end"
        phase_b = []
        got = {p: 0 for p in range(partitions)}
        first_offsets = {}
        while sum(got.values()) < total - sum(committed.get(p, 0) for p in range(partitions)):
            r = s2.next_record()
            first_offsets.setdefault(r.partition, r.offset)
            phase_b.append({"partition": r.partition, "offset": r.offset, "key": r.key.decode(), "value": r.value.decode()})
            got[r.partition] += 1
            s2.commit(topic, r.partition, r.offset + 1)
        for p, off in first_offsets.items():
            check(off == committed.get(p, 0),
                  "after reconnecting, partition %d started at %d, its committed offset is %d" % (p, off, committed.get(p, 0)))
        again = [(x["partition"], x["offset"]) for x in phase_b]
        for x in phase_a:
            if x["committed"]:
                check((x["partition"], x["offset"]) not in again, "committed record %d@%d delivered again" % (x["partition"], x["offset"]))
            else:
                check((x["partition"], x["offset"]) in again, "uncommitted record %d@%d not delivered again" % (x["partition"], x["offset"]))
        second_member = s2.member_id
        s2.disconnect()

        # 5. the end -----------------------------------------------------------------------------
        step[0] = "FetchOffsets at the end"
        f = groups.FetchOffsets(group_pb.FetchOffsetsRequest(group_id=group), timeout=CALL_TIMEOUT_S)
        final = {o.partition: o.offset for o in f.offsets if o.topic == topic}
        check(final == ends, "final committed offsets %s, topic ends %s" % (final, ends))
        dg = groups.DescribeGroups(group_pb.DescribeGroupsRequest(group_ids=[group]), timeout=CALL_TIMEOUT_S)
        lags = {o.partition: o.lag for o in dg.groups[0].offsets if o.topic == topic}
        check(lags == {p: 0 for p in range(partitions)}, "lag %s, want 0 everywhere" % lags)

        report.update({
            "partitions": partitions,
            "members": [first_member, second_member],
            "phase_a": phase_a,
            "committed_after_a": {str(k): v for k, v in committed.items()},
            "phase_b": phase_b,
            "first_offsets_b": {str(k): v for k, v in first_offsets.items()},
            "final": {str(k): v for k, v in final.items()},
        })
        channel.close()
    except CheckFailed as e:
        print("python_group_client: FAILED at %s: %s" % (step[0], e), file=sys.stderr)
        return 1
    except grpc.FutureTimeoutError:
        print("python_group_client: FAILED at %s: could not connect to %s" % (step[0], address), file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        print("python_group_client: FAILED at %s: RPC error %s: %s (trailers %s)"
              % (step[0], e.code().name, e.details(), list(e.trailing_metadata() or ())), file=sys.stderr)
        return 1

    report["ok"] = True
    report["elapsed_ms"] = round((time.monotonic() - started) * 1000)
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
