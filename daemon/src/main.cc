// SPDX-License-Identifier: MIT
// spoolgate: argv -> verb -> exit code. Nothing else lives here.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <optional>
#include <string_view>
#include <vector>

#include "app/daemon.h"
#include "app/listeners.h"
#include "app/oauth_cli.h"
#include "app/passwd.h"
#include "app/probe.h"
#include "app/queue_cli.h"
#include "app/routes.h"
#include "app/sendmail.h"
#include "config/config.h"

namespace {

using spoolgate::config::Config;

constexpr const char* kSystemConfig = "/etc/spoolgate/spoolgate.yaml";

// --config, else $SPOOLGATE_CONFIG, else the system file if present, else
// defaults and environment only (the container case).
std::string config_path(const std::string& flag, const spoolgate::config::Env& env) {
  if (!flag.empty()) return flag;
  if (auto it = env.find("SPOOLGATE_CONFIG"); it != env.end() && !it->second.empty()) return it->second;
  if (::access(kSystemConfig, R_OK) == 0) return kSystemConfig;
  return "";
}

bool load(const std::string& flag, Config& out) {
  auto env = spoolgate::config::process_env();
  auto cfg = spoolgate::config::load(config_path(flag, env), env);
  if (!cfg) {
    for (const auto& e : cfg.error()) std::cerr << "spoolgate: " << e << "\n";
    std::cerr << "spoolgate: " << cfg.error().size() << " configuration error(s)\n";
    return false;
  }
  out = std::move(*cfg);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Installed under the traditional names (`cmake --install --component sendmail`), the
  // binary behaves as they do: `sendmail ...` queues stdin, `mailq` lists.
  std::string_view self = argc > 0 ? argv[0] : "";
  self = self.substr(self.rfind('/') == std::string_view::npos ? 0 : self.rfind('/') + 1);
  std::vector<char*> args(argv, argv + argc);
  static char sendmail_verb[] = "sendmail", queue_verb[] = "queue", list_verb[] = "list";
  if (self == "sendmail" && argc > 0) {
    args.insert(args.begin() + 1, sendmail_verb);
  } else if (self == "mailq" && argc > 0) {
    args.insert(args.begin() + 1, {queue_verb, list_verb});
  }
  argc = static_cast<int>(args.size());
  argv = args.data();

  CLI::App app{"spoolgate: a durable local SMTP relay with verified TLS upstream delivery"};
  app.require_subcommand(1);
  std::string config;
  auto add_config = [&](CLI::App* sub) {
    sub->add_option(
        "-c,--config", config,
        "configuration file (default: $SPOOLGATE_CONFIG, then " + std::string(kSystemConfig) + " if present)");
  };

  auto* run = app.add_subcommand("run", "run the daemon in the foreground");
  add_config(run);
  auto* check = app.add_subcommand("check-config", "print the effective configuration, or every error");
  add_config(check);
  auto* queue = app.add_subcommand("queue", "inspect the spool");
  queue->require_subcommand(1);
  auto* list = queue->add_subcommand("list", "list queued messages");
  add_config(list);
  bool json = false;
  list->add_flag("--json", json, "print a JSON array");
  auto* flush = queue->add_subcommand("flush", "make every deferred message due now (also: SIGUSR1)");
  add_config(flush);
  std::string queue_id;
  auto* retry = queue->add_subcommand("retry", "make one message due now");
  add_config(retry);
  retry->add_option("ID", queue_id, "queue id")->required();
  auto* del = queue->add_subcommand("delete", "delete one message from the queue");
  add_config(del);
  del->add_option("ID", queue_id, "queue id")->required();
  auto* show = queue->add_subcommand("show", "show one message: envelope, attempts, last reply per recipient");
  add_config(show);
  show->add_option("ID", queue_id, "queue id")->required();
  auto* probe = app.add_subcommand("probe", "connect to an upstream as delivery would and report what was found");
  add_config(probe);
  std::size_t probe_index = 0;
  bool probe_auth = false;
  probe->add_option("--upstream", probe_index, "which upstream, counted from 0 (default 0)");
  probe->add_flag("--auth", probe_auth, "also check that authentication succeeds");
  auto* sendmail = app.add_subcommand("sendmail", "queue a message read from stdin (sendmail compatible)");
  add_config(sendmail);
  spoolgate::app::SendmailOptions sm;
  sendmail->add_flag("-t", sm.recipients_from_headers, "take recipients from To:, Cc: and Bcc: (Bcc: is removed)");
  sendmail->add_flag("-i,--oi", sm.ignore_dots, "a line with a single dot does not end the message");
  sendmail->add_option("-f", sm.sender, "envelope sender");
  sendmail->add_option("-F", sm.full_name, "full name for a From: that is added");
  sendmail->add_option("recipients", sm.recipients, "recipients");
  sendmail->allow_extras();  // ignore the sendmail options we do not implement (-oem, -odb, ...)
  auto* health = app.add_subcommand("health", "ask the running daemon whether it is ready; exit 0 or 1, one line");
  add_config(health);
  bool live = false;
  health->add_flag("--live", live, "only whether the daemon is alive and its loop turning");
  auto* status = app.add_subcommand(
      "status", "what the running daemon is doing: upstreams, queue, the last 24 hours, devices (as its status page)");
  add_config(status);
  bool status_json = false;
  status->add_flag("--json", status_json, "the same as GET /status.json");
  auto* passwd = app.add_subcommand(
      "passwd", "add a device to a listener's users_file or change its password (read from standard input)");
  add_config(passwd);
  std::string passwd_listener, passwd_name;
  passwd->add_option("--listener", passwd_listener,
                     "which listener: its number in listen, counted from 0 (default: the one with a users_file)");
  passwd->add_option("name", passwd_name, "the device's name (what it logs in as)")->required();
  auto* reload = app.add_subcommand(
      "reload", "reload the running daemon's configuration and wait for the result; exit 1 if it was refused");
  add_config(reload);
  auto* oauth = app.add_subcommand("oauth", "OAuth2 tokens of the upstreams: status, login");
  oauth->require_subcommand(1);
  auto* oauth_status = oauth->add_subcommand("status", "per OAuth upstream: grant, state, token expiry, last refresh");
  add_config(oauth_status);
  bool oauth_json = false;
  oauth_status->add_flag("--json", oauth_json, "one JSON object");
  auto* oauth_login = oauth->add_subcommand(
      "login",
      "sign in once for a refresh_token upstream (device code, or a browser for Google), store it, tell the daemon");
  add_config(oauth_login);
  spoolgate::app::LoginOptions login_opt;
  oauth_login->add_option("--upstream", login_opt.upstream,
                          "which upstream: its number counted from 0, or its name in oauth status "
                          "(default: the only one that needs a sign-in)");
  oauth_login->add_flag("--browser", login_opt.browser,
                        "sign in in a browser (authorization code with PKCE) even where a device code would do");
  oauth_login->add_option("--port", login_opt.port, "the browser sign-in's port on 127.0.0.1 (default: any free one)")
      ->check(CLI::Range(1, 65535));
  auto* version = app.add_subcommand("version", "print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (version->parsed()) {
    std::cout << "spoolgate " << SPOOLGATE_VERSION << "\n";
    return 0;
  }
  Config cfg;
  if (!load(config, cfg)) return 1;
  if (check->parsed()) {
    // The listeners' certificates are loaded as the daemon would: a key that
    // does not match or an expired certificate fails here, not at start.
    auto tls = spoolgate::app::describe_listener_tls(cfg);
    if (!tls) {
      std::cerr << "spoolgate: " << tls.error().message() << "\n";
      return 1;
    }
    std::cout << spoolgate::config::dump(cfg) << spoolgate::app::route_report(cfg);
    for (const auto& line : *tls) std::cout << "# " << line << "\n";
    return 0;
  }
  if (list->parsed()) return spoolgate::app::queue_list(cfg, json);
  for (auto* verb : {flush, retry, del, show})
    if (verb->parsed()) return spoolgate::app::queue_command(cfg, verb->get_name(), queue_id);
  if (run->parsed()) return spoolgate::app::run_daemon(cfg);
  if (health->parsed()) return spoolgate::app::health(cfg, live);
  if (status->parsed()) return spoolgate::app::status(cfg, status_json);
  if (reload->parsed()) return spoolgate::app::reload(cfg);
  if (probe->parsed()) return spoolgate::app::probe(cfg, probe_index, probe_auth, std::cout);
  if (sendmail->parsed()) return spoolgate::app::sendmail(cfg, sm, std::cin);
  if (passwd->parsed()) return spoolgate::app::passwd(cfg, passwd_listener, passwd_name, std::cin, std::cout);
  if (oauth_status->parsed()) return spoolgate::app::oauth_status(cfg, oauth_json, std::cout);
  if (oauth_login->parsed()) return spoolgate::app::oauth_login(cfg, login_opt, std::cout);
  return 2;
}
