"""The README's tour from Python, with stubs generated from proto/ (see README.md):
    protoc -Iproto --python_out=gen --grpc_python_out=gen \
      --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin proto/rill/v1/*.proto
    PYTHONPATH=gen /usr/bin/python3 examples/orders.py [HOST:PORT]
"""
import json
import sys

import grpc
from rill.v1 import admin_service_pb2 as admin, admin_service_pb2_grpc as admin_grpc
from rill.v1 import common_pb2 as common, fetch_service_pb2 as fetch, fetch_service_pb2_grpc as fetch_grpc
from rill.v1 import produce_service_pb2 as produce, produce_service_pb2_grpc as produce_grpc

channel = grpc.insecure_channel(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051")
topics = admin_grpc.AdminServiceStub(channel).ListTopics(admin.ListTopicsRequest()).topics
if not any(t.name == "orders" for t in topics):
    admin_grpc.AdminServiceStub(channel).CreateTopics(admin.CreateTopicsRequest(topics=[admin.CreateTopicsRequest.Topic(name="orders", partitions=6)]))

records = [common.Record(key=f"customer-{i % 3}".encode(), value=json.dumps({"id": i, "amount": i * 10}).encode()) for i in range(1, 11)]
sent = produce_grpc.ProduceServiceStub(channel).Produce(produce.ProduceRequest(topic="orders", records=records))
for i, r in enumerate(sent.records, start=1):
    print(f"sent order {i} to partition {r.partition} at offset {r.offset}")

wanted = [fetch.FetchPartition(topic="orders", partition=p, offset=0) for p in range(6)]
got = fetch_grpc.FetchServiceStub(channel).Fetch(fetch.FetchRequest(partitions=wanted, format=common.RECORD_FORMAT_RECORDS))
for p in got.partitions:
    for r in p.records:
        print(f"partition {r.partition} offset {r.offset} key {r.key.decode()} {r.value.decode()}")
