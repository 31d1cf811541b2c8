// The main chat service: consumes <prefix>messages in consumer group
// "main-chat" (instances share the partitions), stores, updates inboxes and
// asks for notifications; commits each record only after that is done.
#include <optional>

#include "app/component.h"
#include "app/consume_loop.h"
#include "app/context.h"
#include "chat/events.h"
#include "common/metrics.h"
#include "mainchat/main_chat.h"
#include "queue/queue.h"

namespace chatd::app {
namespace {

class main_chat_component final : public component {
 public:
  explicit main_chat_component(context& ctx)
      : ctx_(ctx),
        main_(ctx.db(), ctx.presence(), ctx.notifier(), ctx.metrics()),
        loop_(
            ctx.queue(), "main-chat", {ctx.topic_names().messages}, queue::start_position::earliest,
            [this](const queue::record& r) -> status {
              auto e = chat::decode_event(r.value);
              if (!e) return std::move(e).err();
              return main_.apply(*e);
            },
            "main-chat") {
    auto& q = ctx.queue();
    ctx.metrics().gauge_fn("chatd_queue_lag", "Records not yet processed by the main chat service", lag_labels(),
                           [&q, topic = ctx.topic_names().messages] {
                             auto l = q.lag("main-chat", topic);
                             return l ? static_cast<double>(*l) : 0.0;
                           });
    if (!ctx.all_in_one()) listener_.emplace(ctx, "main-chat", ctx.cfg().main_chat.listen);
  }
  ~main_chat_component() override { ctx_.metrics().remove_gauge_fn("chatd_queue_lag", lag_labels()); }

  void start() override {
    loop_.start();
    if (listener_) listener_->start();
  }
  void stop() override {
    if (listener_) listener_->stop();
    loop_.stop();
  }

 private:
  metric_labels lag_labels() const { return {{"group", "main-chat"}, {"topic", ctx_.topic_names().messages}}; }

  context& ctx_;
  mainchat::main_chat main_;
  consume_loop loop_;
  std::optional<service_listener> listener_;
};

}  // namespace

std::unique_ptr<component> make_main_chat(context& ctx) { return std::make_unique<main_chat_component>(ctx); }

}  // namespace chatd::app
