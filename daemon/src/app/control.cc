// SPDX-License-Identifier: MIT
#include "app/control.h"

#include <map>
#include <memory>
#include <optional>

#include "app/daemon.h"
#include "app/metrics.h"
#include "app/queue_cli.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"

namespace spoolgate::app {
namespace {

std::map<std::string, Waiting> waiting_now(const upstream::Delivery& d) {
  std::map<std::string, Waiting> out;
  for (const auto& id : d.scheduler().flying_ids()) out[id].active = true;
  for (const auto& [id, route] : d.scheduler().routes()) out[id].route = route;
  for (const auto& [id, h] : d.held()) {
    out[id].held_until = h.until_ms / 1000;
    out[id].held_reason = h.reason;
  }
  return out;
}

}  // namespace

void serve_control(Daemon& d, const std::string& request, const RequestServer::Respond& respond) {
  std::string line = request;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  size_t space = line.find(' ');
  std::string verb = line.substr(0, space);
  std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
  if (verb == "health") {
    Health h = check_health(d.snapshot(), arg != "live");
    return respond((h.ok ? "ok\n" : "error: ") + h.reason + "\n");
  }
  if (verb == "waiting") {  // read only, like health, not logged: what queue list shows beyond the spool
    return respond("ok\n" + encode_waiting(waiting_now(d.delivery())));
  }
  if (verb == "status") {  // read only: `spoolgate status [--json]`
    bool json = arg == "json";
    return d.status_report([respond, json](const status::Report& r) {
      respond("ok\n" + (json ? status::to_json(r) : status::to_text(r)));
    });
  }
  if (verb == "oauth-status") {  // read only
    auto all = d.tokens().status();
    return respond("ok\n" + (arg == "json" ? oauth::status_json(all) : oauth::status_text(all, unix_now_ms())));
  }
  log::info("control").kv("verb", verb).kv("arg", arg);
  if (verb == "oauth-reload") {
    // `spoolgate oauth login` stored a new sign-in for this key.
    if (!arg.empty() && !oauth::Store::valid_key(arg)) return respond("error: '" + arg + "' is not an OAuth key\n");
    d.tokens().reload(arg);
    return respond("ok\nthe daemon reads the new sign-in now\n");
  }
  if ((verb == "retry" || verb == "delete" || verb == "inject") && !is_queue_id(arg))
    return respond("error: '" + arg + "' is not a queue id\n");
  if (verb == "reload") {
    auto why = d.reload();
    return respond(why ? "error: reload refused: " + *why + "\n" : "ok\nreloaded\n");
  }
  if (verb == "flush") {
    std::size_t n = d.delivery().flush();
    return respond("ok\nflushed: " + std::to_string(n) + " message(s) due now\n");
  }
  if (verb == "retry") {
    if (d.delivery().retry(arg)) return respond("ok\n" + arg + " is due now\n");
    return respond("error: " + arg + " is not queued, or is being delivered\n");
  }
  if (verb == "delete") {
    return d.delivery().remove(arg, [respond, arg](bool ok, const std::string& why) {
      respond(ok ? "ok\n" + arg + " deleted\n" : "error: " + why + "\n");
    });
  }
  if (verb == "inject") {
    // A message `spoolgate sendmail` committed to the spool. Once: a
    // repeated inject must not count its size twice.
    if (d.delivery().scheduler().contains(arg)) return respond("ok\nalready queued\n");
    auto loaded = std::make_shared<Result<spool::Record>>();
    return d.loop().queue_work([sp = d.spool(), arg, loaded] { *loaded = sp->load(arg); },
                               [&d, respond, loaded, arg] {
                                 if (!*loaded) return respond("error: " + loaded->error().message() + "\n");
                                 if (d.delivery().scheduler().contains(arg)) return respond("ok\nalready queued\n");
                                 log::info("queued").kv("msg", arg).kv("client", "sendmail");
                                 d.queued(**loaded, true);
                                 respond("ok\n");
                               });
  }
  if (verb == "show") {
    auto out = std::make_shared<std::string>();
    auto all = waiting_now(d.delivery());
    auto w = all.count(arg) ? std::make_optional(all[arg]) : std::nullopt;
    return d.loop().queue_work([sp = d.spool(), arg, out, w] { *out = show_message(*sp, arg, w ? &*w : nullptr); },
                               [respond, out] { respond(*out); });
  }
  respond("error: unknown request '" + verb + "'\n");
}

}  // namespace spoolgate::app
