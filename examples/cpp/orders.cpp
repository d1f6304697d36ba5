// orders: a Rill client in C++, on stubs generated from proto/ (no hand-written protocol code).
// It produces keyed JSON orders into a topic, or processes them as a member of a consumer group
// through GroupService.Consume, committing after processing.
//
//   orders produce [--addr HOST:PORT] [--topic orders] [--partitions 6] [--count 10] [--first 1]
//   orders consume [--addr HOST:PORT] [--topic orders] [--group order-processing] [--commit-every 1]
//                  [--session-timeout-ms 0] [--from earliest|latest] [--client-id orders-cpp]
//
// produce creates the topic when it is missing, sends orders first..first+count-1 (key
// "customer-N", value {"order":..,"customer":..,"amount":..}) with acks=all, and prints one JSON
// line per order: {"type":"produced","partition":P,"offset":O,"key":K,"value":V}.
//
// consume joins the group; the broker assigns its partitions (no assignor or heartbeat loop
// here) and streams their records from the group's committed offsets. It prints one JSON line
// per event: "assigned" and "revoked" (partitions), "record" (a processed order), "commit" (offsets
// sent, with a commit id), "committed" (an offset the broker confirmed: the next offset to read). Offsets are committed once every
// --commit-every processed records, and for a partition at once when it is revoked. SIGINT or
// SIGTERM commits what was processed, leaves the group and prints {"type":"closed"}.
//
// Build (Debian 12: libgrpc++-dev protobuf-compiler-grpc pkg-config g++), from the repository's
// root:
//
//   mkdir -p gen/cpp
//   protoc -Iproto --cpp_out=gen/cpp --grpc_out=gen/cpp --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin
//       proto/rill/v1/{common,security,admin_service,produce_service,group_service}.proto
//   g++ -std=c++17 -O1 -Igen/cpp -o orders-cpp examples/cpp/orders.cpp gen/cpp/rill/v1/*.cc
//       $(pkg-config --cflags --libs grpc++ protobuf) -pthread
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "rill/v1/admin_service.grpc.pb.h"
#include "rill/v1/group_service.grpc.pb.h"
#include "rill/v1/produce_service.grpc.pb.h"

namespace {

constexpr auto kCallTimeout = std::chrono::seconds(10);

// A failure to report on stderr (exit 1).
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A command line that cannot be run (exit 2, with the usage).
struct UsageError : Failure {
  using Failure::Failure;
};

// Flags of the form --name value, with defaults.
class Flags {
 public:
  Flags(int argc, char** argv, std::map<std::string, std::string> defaults) : values_(std::move(defaults)) {
    for (int i = 2; i < argc; i++) {
      std::string name = argv[i];
      if (name.rfind("--", 0) != 0 || values_.count(name.substr(2)) == 0 || i + 1 >= argc)
        throw UsageError("unknown flag or missing value: " + name);
      values_[name.substr(2)] = argv[++i];
    }
  }
  const std::string& str(const std::string& name) const { return values_.at(name); }
  long num(const std::string& name) const {
    const std::string& v = values_.at(name);
    char* end = nullptr;
    long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0') throw UsageError("--" + name + " " + v + ": not a number");
    return n;
  }

 private:
  std::map<std::string, std::string> values_;
};

// A JSON string literal.
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string partitionList(const std::vector<int32_t>& ps) {
  std::string out = "[";
  for (size_t i = 0; i < ps.size(); i++) out += (i ? "," : "") + std::to_string(ps[i]);
  return out + "]";
}

// Prints one JSON line on stdout, flushed (a reader sees each event as it happens).
void emit(const std::string& json) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::cout << json << std::endl;
}

std::string describe(const grpc::Status& s) { return "gRPC status " + std::to_string(s.error_code()) + ": " + s.error_message(); }

std::unique_ptr<grpc::ClientContext> callContext() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  return ctx;
}

std::shared_ptr<grpc::Channel> dial(const std::string& addr) {
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + kCallTimeout)) throw Failure("cannot connect to " + addr);
  return channel;
}

// Creates `topic` unless it exists.
void ensureTopic(rill::v1::AdminService::Stub& admin, const std::string& topic, int32_t partitions) {
  rill::v1::ListTopicsResponse list;
  grpc::Status s = admin.ListTopics(callContext().get(), rill::v1::ListTopicsRequest(), &list);
  if (!s.ok()) throw Failure("list topics: " + describe(s));
  for (const auto& t : list.topics())
    if (t.name() == topic) return;
  rill::v1::CreateTopicsRequest req;
  auto* t = req.add_topics();
  t->set_name(topic);
  t->set_partitions(partitions);
  rill::v1::CreateTopicsResponse created;
  s = admin.CreateTopics(callContext().get(), req, &created);
  if (!s.ok()) throw Failure("create topic " + topic + ": " + describe(s));
  // Another client may have created it meanwhile.
  const auto& result = created.topics(0);
  if (result.has_error() && result.error().name() != "TOPIC_ALREADY_EXISTS")
    throw Failure("create topic " + topic + ": " + result.error().name() + ": " + result.error().message());
}

int produce(const Flags& flags) {
  const std::string topic = flags.str("topic");
  auto channel = dial(flags.str("addr"));
  auto admin = rill::v1::AdminService::NewStub(channel);
  ensureTopic(*admin, topic, static_cast<int32_t>(flags.num("partitions")));
  const long count = flags.num("count"), first = flags.num("first");
  if (count <= 0) return 0;

  // No partition: the broker routes each record by its key (murmur2, as Kafka).
  rill::v1::ProduceRequest req;
  req.set_topic(topic);
  req.set_acks(rill::v1::ACKS_ALL);
  for (long n = first; n < first + count; n++) {
    const std::string customer = "customer-" + std::to_string(n * 7 % 40);
    auto* r = req.add_records();
    r->set_key(customer);
    r->set_value("{\"order\":" + std::to_string(n) + ",\"customer\":" + quote(customer) +
                 ",\"amount\":" + std::to_string(n * 37 % 1000 + 1) + "}");
  }
  rill::v1::ProduceResponse resp;
  grpc::Status s = rill::v1::ProduceService::NewStub(channel)->Produce(callContext().get(), req, &resp);
  if (!s.ok()) throw Failure("produce to " + topic + ": " + describe(s));
  for (const auto& p : resp.partitions())
    if (p.has_error())
      throw Failure("produce to " + topic + "-" + std::to_string(p.partition()) + ": " + p.error().name() + ": " + p.error().message());
  if (resp.records_size() != req.records_size())
    throw Failure("produce to " + topic + ": " + std::to_string(resp.records_size()) + " records placed for " +
                  std::to_string(req.records_size()) + " sent");
  for (int i = 0; i < resp.records_size(); i++) {
    const auto& at = resp.records(i);
    emit("{\"type\":\"produced\",\"partition\":" + std::to_string(at.partition()) + ",\"offset\":" +
         std::to_string(at.offset()) + ",\"key\":" + quote(req.records(i).key()) + ",\"value\":" +
         quote(req.records(i).value()) + "}");
  }
  return 0;
}

using ConsumeStream = grpc::ClientReaderWriter<rill::v1::ConsumeRequest, rill::v1::ConsumeResponse>;

// One group member: what it owns and what it processed but did not commit. The main thread
// reads the stream; the signal thread may commit and leave, so writes and `pending` take `mu`.
class Member {
 public:
  Member(ConsumeStream& stream, std::string topic, long commitEvery)
      : stream_(stream), topic_(std::move(topic)), commitEvery_(commitEvery) {}

  // Applies one message of the stream.
  void handle(const rill::v1::ConsumeResponse& r) {
    if (r.has_assignment()) {
      const auto& a = r.assignment();
      std::vector<int32_t> revoked = partitionsOf(a.revoked()), assigned = partitionsOf(a.assigned());
      if (!revoked.empty()) {
        // Commit what was processed of them before they go to another member.
        commit(std::set<int32_t>(revoked.begin(), revoked.end()));
        for (int32_t p : revoked) owned_.erase(p);
        emit("{\"type\":\"revoked\",\"member\":" + quote(a.member_id()) + ",\"partitions\":" + partitionList(revoked) + "}");
      }
      if (!assigned.empty()) {
        owned_.insert(assigned.begin(), assigned.end());
        emit("{\"type\":\"assigned\",\"member\":" + quote(a.member_id()) + ",\"partitions\":" + partitionList(assigned) + "}");
      }
    } else if (r.has_records()) {
      const auto& rs = r.records();
      if (rs.has_error())
        throw Failure(rs.topic() + "-" + std::to_string(rs.partition()) + " at " + std::to_string(rs.first_offset()) + ": " +
                      rs.error().name() + ": " + rs.error().message());
      if (owned_.count(rs.partition()) == 0) return;
      for (const auto& rec : rs.records()) {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        process(rec);
        pending_[rec.partition()] = rec.offset() + 1;
        if (++processed_ >= commitEvery_) commitLocked({});
      }
    } else if (r.has_commit_result()) {
      const auto& cr = r.commit_result();
      if (cr.has_error())
        throw Failure("commit " + std::to_string(cr.commit_id()) + ": " + cr.error().name() + ": " + cr.error().message());
      for (const auto& o : cr.offsets()) {
        if (o.has_error()) {
          // E.g. a partition revoked meanwhile: its next owner reads it from the last commit.
          std::cerr << "orders consume: commit of " << o.topic() << "-" << o.partition() << " at " << o.offset()
                    << " refused: " << o.error().name() << ": " << o.error().message() << std::endl;
          continue;
        }
        emit("{\"type\":\"committed\",\"commit_id\":" + std::to_string(cr.commit_id()) + ",\"partition\":" +
             std::to_string(o.partition()) + ",\"offset\":" + std::to_string(o.offset()) + "}");
      }
    }
  }

  // Commit what was processed, then half-close: the broker removes the member and ends the
  // stream. Records still arriving are not processed (the next owner gets them).
  void leave() {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    commitLocked({});
    closed_ = true;
    stream_.WritesDone();
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

 private:
  // The application's work on one order: here, a running total per customer.
  void process(const rill::v1::ConsumedRecord& rec) {
    google::protobuf::Struct order;
    auto parsed = google::protobuf::util::JsonStringToMessage(rec.value(), &order);
    std::string customer;
    long amount = 0;
    if (!parsed.ok()) {
      std::cerr << "orders consume: " << rec.topic() << "-" << rec.partition() << " at " << rec.offset()
                << " is not an order: " << parsed.ToString() << std::endl;
    } else {
      const auto& f = order.fields();
      if (f.count("customer")) customer = f.at("customer").string_value();
      if (f.count("amount")) amount = static_cast<long>(f.at("amount").number_value());
    }
    totals_[customer] += amount;
    emit("{\"type\":\"record\",\"partition\":" + std::to_string(rec.partition()) + ",\"offset\":" +
         std::to_string(rec.offset()) + ",\"key\":" + quote(rec.key()) + ",\"value\":" + quote(rec.value()) +
         ",\"customer_total\":" + std::to_string(totals_[customer]) + "}");
  }

  void commit(const std::set<int32_t>& only) {
    std::lock_guard<std::mutex> lock(mu_);
    commitLocked(only);
  }

  // Sends the pending offsets of `only` (all partitions when empty) on the stream; the broker
  // answers with a commit_result.
  void commitLocked(const std::set<int32_t>& only) {
    if (stopping_ && closed_) return;
    rill::v1::ConsumeRequest req;
    auto* c = req.mutable_commit();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (!only.empty() && only.count(it->first) == 0) {
        ++it;
        continue;
      }
      auto* o = c->add_offsets();
      o->set_topic(topic_);
      o->set_partition(it->first);
      o->set_offset(it->second);
      o->set_leader_epoch(-1);
      it = pending_.erase(it);
    }
    if (only.empty()) processed_ = 0;
    if (c->offsets_size() == 0) return;
    c->set_commit_id(++nextCommit_);
    if (!stream_.Write(req)) throw Failure("commit: the stream is closed");
    std::string offsets = "[";
    for (int i = 0; i < c->offsets_size(); i++)
      offsets += std::string(i ? "," : "") + "{\"partition\":" + std::to_string(c->offsets(i).partition()) + ",\"offset\":" +
                 std::to_string(c->offsets(i).offset()) + "}";
    emit("{\"type\":\"commit\",\"commit_id\":" + std::to_string(nextCommit_) + ",\"offsets\":" + offsets + "]}");
  }

  std::vector<int32_t> partitionsOf(const google::protobuf::RepeatedPtrField<rill::v1::TopicPartition>& tps) const {
    std::vector<int32_t> out;
    for (const auto& tp : tps)
      if (tp.topic() == topic_) out.push_back(tp.partition());
    std::sort(out.begin(), out.end());
    return out;
  }

  ConsumeStream& stream_;
  const std::string topic_;
  const long commitEvery_;
  std::mutex mu_;
  bool stopping_ = false;  // no record is processed once set
  bool closed_ = false;    // WritesDone was called
  std::set<int32_t> owned_;
  std::map<int32_t, int64_t> pending_;  // partition -> next offset to commit
  long processed_ = 0;                   // records processed since the last commit
  uint64_t nextCommit_ = 0;
  std::map<std::string, long> totals_;  // amount per customer
};

int consume(const Flags& flags) {
  const long commitEvery = flags.num("commit-every");
  if (commitEvery < 1 || commitEvery > 500) throw Failure("--commit-every " + flags.str("commit-every") + ": must be 1 to 500");
  const std::string from = flags.str("from");
  if (from != "earliest" && from != "latest") throw Failure("--from " + from + ": must be earliest or latest");

  // SIGINT and SIGTERM go to one thread (sigwait), blocked everywhere else, gRPC's threads included.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGINT);
  sigaddset(&stopSignals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);

  auto channel = dial(flags.str("addr"));
  auto groups = rill::v1::GroupService::NewStub(channel);
  grpc::ClientContext ctx;
  std::unique_ptr<ConsumeStream> stream = groups->Consume(&ctx);

  rill::v1::ConsumeRequest req;
  auto* sub = req.mutable_subscribe();
  sub->set_group_id(flags.str("group"));
  sub->add_topics(flags.str("topic"));
  sub->set_auto_offset_reset(from == "earliest" ? rill::v1::AUTO_OFFSET_RESET_EARLIEST : rill::v1::AUTO_OFFSET_RESET_LATEST);
  sub->set_max_outstanding_records(1000);  // credit: records sent beyond the last commit
  sub->set_format(rill::v1::RECORD_FORMAT_RECORDS);
  sub->set_session_timeout_ms(static_cast<int32_t>(flags.num("session-timeout-ms")));
  sub->set_client_id(flags.str("client-id"));
  if (!stream->Write(req)) throw Failure("subscribe: " + describe(stream->Finish()));

  Member member(*stream, flags.str("topic"), commitEvery);
  std::atomic<bool> ended{false};
  std::thread signals([&] {
    const timespec tick{0, 100 * 1000 * 1000};
    while (!ended && sigtimedwait(&stopSignals, nullptr, &tick) < 0) {
    }
    if (ended) return;
    member.leave();
    const auto deadline = std::chrono::steady_clock::now() + kCallTimeout;
    while (!ended && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!ended) ctx.TryCancel();  // the broker did not end the stream in time
  });

  rill::v1::ConsumeResponse resp;
  try {
    while (stream->Read(&resp)) member.handle(resp);
  } catch (...) {
    ended = true;
    ctx.TryCancel();
    signals.join();
    throw;
  }
  ended = true;
  signals.join();
  grpc::Status s = stream->Finish();
  if (!s.ok()) throw Failure("stream: " + describe(s));
  if (!member.stopping()) throw Failure("the broker ended the stream");
  emit("{\"type\":\"closed\"}");
  return 0;
}

}  // namespace

const char kUsage[] =
    "usage: orders produce [--addr 127.0.0.1:50051] [--topic orders] [--partitions 6] [--count 10] [--first 1]\n"
    "       orders consume [--addr 127.0.0.1:50051] [--topic orders] [--group order-processing] [--commit-every 1]\n"
    "                      [--session-timeout-ms 0] [--from earliest|latest] [--client-id orders-cpp]\n";

int main(int argc, char** argv) {
  const std::string mode = argc >= 2 ? argv[1] : "";
  if (mode == "-h" || mode == "--help") {
    std::cout << kUsage;
    return 0;
  }
  if (mode != "produce" && mode != "consume") {
    std::cerr << kUsage;
    return 2;
  }
  try {
    if (mode == "produce")
      return produce(Flags(argc, argv, {{"addr", "127.0.0.1:50051"}, {"topic", "orders"}, {"partitions", "6"}, {"count", "10"}, {"first", "1"}}));
    return consume(Flags(argc, argv, {{"addr", "127.0.0.1:50051"}, {"topic", "orders"}, {"group", "order-processing"},
                                      {"commit-every", "1"}, {"session-timeout-ms", "0"}, {"from", "earliest"},
                                      {"client-id", "orders-cpp"}}));
  } catch (const UsageError& e) {
    std::cerr << "orders " << mode << ": " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const Failure& e) {
    std::cerr << "orders " << mode << ": " << e.what() << std::endl;
    return 1;
  }
}
