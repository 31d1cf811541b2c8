// The main chat service: consumes <prefix>messages in consumer group
// "main-chat" (instances share the partitions), stores, updates inboxes and
// asks for notifications; commits each record only after that is done. With
// routed delivery it also runs the router (consumer group "router" on the
// message and event topics, ADR 009), apart from the store so that slow
// notification calls never hold deliveries back.
#include <optional>

#include "app/component.h"
#include "app/consume_loop.h"
#include "app/context.h"
#include "app/dead_letters.h"
#include "chat/events.h"
#include "common/log.h"
#include "common/metrics.h"
#include "discovery/registry.h"
#include "mainchat/main_chat.h"
#include "mainchat/router.h"
#include "queue/queue.h"

namespace chatd::app {
namespace {

consume_loop::dead_letter_sink dead_letter_sink(context& ctx, std::string group) {
  return [&dl = ctx.dead_letters(), group = std::move(group)](const queue::record& r, const error& why, int attempts) {
    return dl.put(group, r, why, attempts);
  };
}

class main_chat_component final : public component {
 public:
  explicit main_chat_component(context& ctx)
      : ctx_(ctx),
        main_(ctx.db(), ctx.presence(), ctx.notifier(), ctx.metrics()),
        loop_(ctx.queue(), "main-chat", {ctx.topic_names().messages}, queue::start_position::earliest,
              consume_loop::batch_handler([this](const std::vector<queue::record>& batch) -> status {
                std::vector<chat::event> events;
                events.reserve(batch.size());
                for (const auto& r : batch) {
                  // bad_request: the loop then finds the undecodable record
                  // and moves it to the dead-letter topic.
                  auto e = chat::decode_event(r.value);
                  if (!e) return std::move(e).err();
                  events.push_back(std::move(e.value()));
                }
                return main_.apply_batch(events);
              }),
              "main-chat") {
    // Inboxes, read marks and notifications may trail the push by a few
    // milliseconds; batching them costs one wake-up per batch, not per message.
    loop_.linger(std::chrono::milliseconds(5), 256);
    loop_.on_give_up(dead_letter_sink(ctx, "main-chat"), {});
    add_lag_gauge("main-chat", ctx.topic_names().messages);
    if (!ctx.all_in_one()) listener_.emplace(ctx, "main-chat", ctx.cfg().main_chat.listen);
    if (ctx.routed_delivery()) {
      mainchat::router_deps d{ctx.db(), ctx.presence(), ctx.producer(), ctx.metrics(), [&reg = ctx.registry()] {
                                std::vector<std::string> ids;
                                if (auto live = reg.healthy()) {
                                  for (auto& s : *live) ids.push_back(std::move(s.id));
                                }
                                return ids;
                              }};
      router_.emplace(d, ctx.cfg().queue.topic_prefix);
      router_loop_.emplace(
          ctx.queue(), "router", std::vector<std::string>{ctx.topic_names().messages, ctx.topic_names().events},
          queue::start_position::latest, consume_loop::batch_handler([this](const std::vector<queue::record>& batch) {
            return router_->route(batch);
          }),
          "router");
      router_loop_->on_give_up(dead_letter_sink(ctx, "router"), {});
      add_lag_gauge("router", ctx.topic_names().messages);
      add_lag_gauge("router", ctx.topic_names().events);
    }
  }
  ~main_chat_component() override {
    for (const auto& labels : lag_gauges_) ctx_.metrics().remove_gauge_fn("chatd_queue_lag", labels);
  }

  void start() override {
    loop_.start();
    if (router_loop_) router_loop_->start();
    if (listener_) listener_->start();
  }
  void stop() override {
    if (listener_) listener_->stop();
    if (router_loop_) router_loop_->stop();
    loop_.stop();
  }

 private:
  // chatd_queue_lag{group,topic}: what this role's consumer groups have not
  // processed yet.
  void add_lag_gauge(const std::string& group, const std::string& topic) {
    metric_labels labels{{"group", group}, {"topic", topic}};
    ctx_.metrics().gauge_fn("chatd_queue_lag", "Records not yet processed by a consumer group of the main chat service",
                            labels, [&q = ctx_.queue(), group, topic] {
                              auto l = q.lag(group, topic);
                              return l ? static_cast<double>(*l) : 0.0;
                            });
    lag_gauges_.push_back(std::move(labels));
  }

  context& ctx_;
  mainchat::main_chat main_;
  consume_loop loop_;
  std::optional<mainchat::router> router_;
  std::optional<consume_loop> router_loop_;
  std::optional<service_listener> listener_;
  std::vector<metric_labels> lag_gauges_;
};

}  // namespace

std::unique_ptr<component> make_main_chat(context& ctx) { return std::make_unique<main_chat_component>(ctx); }

}  // namespace chatd::app
