// SPDX-License-Identifier: MIT
#include "config/config.h"

#include <doctest/doctest.h>

#include <filesystem>

using namespace spoolgate::config;

namespace {
std::string first_error(const std::string& yaml, const Env& env = {}) {
  auto c = load_text(yaml, "t.yaml", env);
  if (c) return "";
  return c.error().front();
}
}  // namespace

TEST_SUITE("config") {
  TEST_CASE("upstreams[].oauth: provider presets, and every combination that cannot work is an error") {
    const std::string up = "upstreams:\n  - url: smtps://smtp.office365.com:465\n    username: relay@contoso.com\n";
    auto m = load_text(up + "    oauth:\n      provider: microsoft\n      tenant: contoso.onmicrosoft.com\n"
                            "      grant: client_credentials\n      client_id: app-1\n"
                            "      client_secret_file: /etc/spoolgate/client-secret\n",
                       "t.yaml", {});
    REQUIRE(m);
    const OAuth& o = m->upstreams[0].oauth;
    CHECK(o.token_url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    CHECK(o.device_authorization_url ==
          "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode");
    CHECK(o.scope == "https://outlook.office365.com/.default");
    auto g = load_text(up + "    oauth: {provider: google, grant: refresh_token, client_id: id}\n", "t.yaml", {});
    REQUIRE(g);
    CHECK(g->upstreams[0].oauth.token_url == "https://oauth2.googleapis.com/token");
    CHECK(g->upstreams[0].oauth.scope == "https://mail.google.com/");
    struct Case {
      std::string yaml;
      const char* expect;
    } cases[] = {
        {up + "    oauth: {provider: microsoft, grant: client_credentials, client_id: x, client_secret_env: S}\n",
         "oauth.tenant: required"},
        {up + "    oauth: {provider: google, grant: client_credentials, client_id: x, client_secret_env: S}\n",
         "Google has no client_credentials grant"},
        {up + "    oauth: {provider: custom, grant: refresh_token, client_id: x, scope: s}\n",
         "oauth.token_url: required"},
        {up + "    oauth: {provider: custom, grant: refresh_token, client_id: x, scope: s, token_url: 'http://x/t'}\n",
         "expected an https:// URL"},
        {up + "    password_file: /p\n    oauth: {provider: google, grant: refresh_token, client_id: x}\n",
         "remove password_file"},
        {"upstreams:\n  - url: smtps://smtp.gmail.com:465\n    oauth: {provider: google, grant: refresh_token, "
         "client_id: x}\n",
         "username: required with oauth"},
        {up + "    auth: plain\n    oauth: {provider: google, grant: refresh_token, client_id: x}\n",
         "expected auto, xoauth2 or oauthbearer"},
        {up + "    oauth: {provider: microsoft, tenant: t, grant: client_credentials, client_id: x}\n",
         "client_credentials needs client_secret_file"},
        {up + "    oauth: {provider: microsoft, tenant: t, grant: client_credentials, client_id: x, client_cert: /c}\n",
         "client_cert and client_key go together"},
        {up + "    oauth: {grant: refresh_token}\n", "the oauth block has no provider"},
        {up + "    oauth: {provider: google, grant: service_account}\n",
         "oauth.key_file: required with service_account"},
        {up + "    oauth: {provider: google, grant: service_account, key_file: /k.json, client_id: x}\n",
         "service_account takes its identity from key_file"},
        {up + "    oauth: {provider: microsoft, tenant: t, grant: service_account, key_file: /k.json}\n",
         "service_account is Google's"},
        {up + "    oauth: {provider: google, grant: refresh_token, client_id: x, key_file: /k.json}\n",
         "only used with grant service_account"},
    };
    auto sa =
        load_text(up + "    oauth: {provider: google, grant: service_account, key_file: /k.json}\n", "t.yaml", {});
    REQUIRE(sa);
    CHECK(sa->upstreams[0].oauth.grant == OAuthGrant::ServiceAccount);
    CHECK(sa->upstreams[0].oauth.scope == "https://mail.google.com/");
    for (const auto& k : cases) {
      CAPTURE(k.yaml);
      std::string e = first_error(k.yaml);
      CHECK(e.find(k.expect) != std::string::npos);
      if (e.find(k.expect) == std::string::npos) MESSAGE(e);
    }
  }

  TEST_CASE("expect: one of sender or device, a period from 1s to 366d, each once") {
    auto c =
        load_text("expect:\n  - {sender: UPS@Lan.Example, every: 1d}\n  - {device: nas, every: 7d}\n", "t.yaml", {});
    REQUIRE(c);
    REQUIRE(c->expect.size() == 2);
    CHECK(c->expect[0].name() == "ups@lan.example");
    CHECK(c->expect[0].every == spoolgate::Millis(86'400'000));
    CHECK(c->expect[1].name() == "nas");
    struct Case {
      const char* yaml;
      const char* expect;
    } cases[] = {
        {"expect: [{every: 1d}]", "give one of sender (an address) or device"},
        {"expect: [{sender: a@b, device: nas, every: 1d}]", "give one of sender"},
        {"expect: [{sender: nobody, every: 1d}]", "expected an address like ups@lan.example"},
        {"expect: [{device: 'two words', every: 1d}]", "a device name is 1 to 64"},
        {"expect: [{device: nas}]", "expected a period from 1s to 366d"},
        {"expect: [{device: nas, every: 400d}]", "expected a period from 1s to 366d"},
        {"expect: [{device: nas, every: 1d}, {device: nas, every: 2d}]", "'nas' is expected twice"},
    };
    for (const auto& k : cases) {
      CAPTURE(k.yaml);
      std::string e = first_error(std::string(k.yaml) + "\n");
      CHECK(e.find(k.expect) != std::string::npos);
      if (e.find(k.expect) == std::string::npos) MESSAGE(e);
    }
  }

  TEST_CASE("notify: https targets, a format, known events; thresholds") {
    auto c = load_text(
        "notify:\n  - {url: 'https://hooks.example/T/B/secret', format: slack}\n"
        "  - {url: 'https://ops.example/hook', secret_file: /s, events: [upstream_down, message_failed]}\n"
        "notify_thresholds: {upstream_down: 5m, repeat: 0s}\n",
        "t.yaml", {});
    REQUIRE(c);
    REQUIRE(c->notify.size() == 2);
    CHECK(c->notify[0].format == NotifyFormat::Slack);
    CHECK(c->notify[0].events == std::vector<std::string>{"all"});
    CHECK(c->notify[1].events == std::vector<std::string>{"upstream_down", "message_failed"});
    CHECK(c->notify_thresholds.upstream_down == spoolgate::Millis(300'000));
    CHECK(c->notify_thresholds.repeat == spoolgate::Millis(0));
    CHECK(c->notify_thresholds.queue_age == spoolgate::Millis(3'600'000));
    // The dump does not show a webhook URL's path (Slack's and Teams' hold the secret).
    std::string d = dump(*c);
    CHECK(d.find("/T/B/secret") == std::string::npos);
    CHECK(d.find("https://hooks.example/...") != std::string::npos);
    struct Case {
      const char* yaml;
      const char* expect;
    } cases[] = {
        {"notify: [{url: 'http://hooks.example/x'}]", "expected an https:// URL"},
        {"notify: [{url: 'https://h/x', format: ntfy, secret_file: /s}]", "only the generic format signs"},
        {"notify: [{url: 'https://h/x', events: [queue_full]}]", "unknown event 'queue_full'"},
        {"notify: [{url: 'https://h/x', format: pager}]", "notify[0].format"},
        {"notify_thresholds: {repeat: 10s}", "expected 0 (no reminders) or at least 1m"},
    };
    for (const auto& k : cases) {
      CAPTURE(k.yaml);
      std::string e = first_error(std::string(k.yaml) + "\n");
      CHECK(e.find(k.expect) != std::string::npos);
      if (e.find(k.expect) == std::string::npos) MESSAGE(e);
    }
  }

  TEST_CASE("the shipped configuration loads") {
    auto c = load(std::string(SPOOLGATE_SOURCE_DIR) + "/conf/spoolgate.yaml", {});
    if (!c)
      for (const auto& e : c.error()) MESSAGE(e);
    REQUIRE(c);
    CHECK(c->listen.size() == 1);
    CHECK(c->listen[0].port == 2525);
    CHECK(c->upstreams.empty());
    CHECK(c->limits.max_message_size == 35ULL << 20);
  }

  TEST_CASE("every recipe in conf/examples loads") {
    namespace fs = std::filesystem;
    int n = 0;
    for (const auto& e : fs::directory_iterator(fs::path(SPOOLGATE_SOURCE_DIR) / "conf/examples")) {
      CAPTURE(e.path().string());
      auto c = load(e.path().string(), {});
      if (!c)
        for (const auto& err : c.error()) MESSAGE(err);
      CHECK(c);
      if (c) CHECK_FALSE(c->upstreams.empty());
      ++n;
    }
    CHECK(n >= 4);
  }

  TEST_CASE("defaults with no file") {
    auto c = load("", {});
    REQUIRE(c);
    CHECK(c->listen[0].text == "127.0.0.1:2525");
    CHECK(c->spool.dir == "./var/spool");
    CHECK(c->delivery.timeouts.done == spoolgate::Millis(600'000));
    CHECK(c->delivery.idle_hold == spoolgate::Millis(2'000));
  }

  TEST_CASE("upstreams[].provider: the profile's limits, each one overridable, and a quota_wait that fits a day") {
    const std::string up = "upstreams:\n  - url: smtps://smtp.office365.com:465\n    provider: microsoft365\n";
    auto c = load_text(up, "t.yaml", {});
    REQUIRE(c);
    CHECK(c->upstreams[0].limits.max_connections == 3);
    CHECK(c->upstreams[0].limits.messages_per_minute == 30);
    CHECK(c->upstreams[0].limits.recipients_per_day == 10'000);
    auto o = load_text(up + "    limits: {messages_per_minute: 10, quota_wait: 2h}\n", "t.yaml", {});
    REQUIRE(o);
    CHECK(o->upstreams[0].limits.messages_per_minute == 10);
    CHECK(o->upstreams[0].limits.recipients_per_day == 10'000);
    CHECK(o->upstreams[0].limits.quota_wait == spoolgate::Millis(2 * 3'600'000));
    // A wait longer than a week is a typo, not a provider's window.
    CHECK(first_error(up + "    limits: {quota_wait: 3000d}\n") ==
          "t.yaml:2: upstreams[0].limits.quota_wait: at most 7d (a provider's quota window reopens within a day), "
          "got 3000d");
  }

  TEST_CASE("API upstreams: graph:// and gmail-api://, their scopes, size cap and what they refuse") {
    const std::string ms =
        "    oauth: {provider: microsoft, tenant: contoso.com, grant: client_credentials, client_id: a, "
        "client_secret_file: /s}\n";
    auto g = load_text("upstreams:\n  - url: graph://alerts@contoso.com/\n" + ms, "t.yaml", {});
    REQUIRE(g);
    const Upstream& u = g->upstreams[0];
    CHECK(u.scheme == Scheme::Graph);
    CHECK(u.mailbox == "alerts@contoso.com");
    CHECK(u.username == "alerts@contoso.com");
    CHECK(u.host == "graph.microsoft.com");
    CHECK(u.oauth.scope == "https://graph.microsoft.com/.default");
    // The mailbox's own default limit, unless set; at most Graph's 150 MB.
    CHECK(u.limits.max_message_size == kGraphDefaultMessage);
    auto big =
        load_text("upstreams:\n  - url: graph://alerts@contoso.com/\n    limits: {max_message_size: 500MiB}\n" + ms,
                  "t.yaml", {});
    REQUIRE(big);
    CHECK(big->upstreams[0].limits.max_message_size == kGraphMaxMessage);
    auto m = load_text(
        "upstreams:\n  - url: gmail-api://me\n    username: a@example.com\n    api_base: "
        "https://gmail.test:8443/\n    limits: {max_message_size: 50MiB}\n    oauth: {provider: google, "
        "grant: refresh_token, client_id: id}\n",
        "t.yaml", {});
    REQUIRE(m);
    CHECK(m->upstreams[0].scheme == Scheme::GmailApi);
    CHECK(m->upstreams[0].mailbox == "me");
    CHECK(m->upstreams[0].host == "gmail.test:8443");
    CHECK(m->upstreams[0].oauth.scope == "https://www.googleapis.com/auth/gmail.send");
    CHECK(m->upstreams[0].limits.max_message_size == kGmailApiMaxMessage);
    // The SMTP scope stays for SMTP upstreams.
    auto smtp =
        load_text("upstreams:\n  - url: smtps://smtp.office365.com\n    username: a@contoso.com\n" + ms, "t.yaml", {});
    REQUIRE(smtp);
    CHECK(smtp->upstreams[0].oauth.scope == "https://outlook.office365.com/.default");
    struct Case {
      std::string yaml;
      const char* expect;
    } cases[] = {
        {"upstreams:\n  - url: graph://\n" + ms, "expected graph://MAILBOX"},
        {"upstreams:\n  - url: gmail-api://someone\n" + ms, "expected gmail-api://me or gmail-api://USER@DOMAIN"},
        {"upstreams:\n  - url: graph://a@b.c\n    api_base: http://graph.test\n" + ms, "expected an https:// URL"},
        {"upstreams:\n  - url: graph://a@b.c\n", "an API upstream needs an oauth: block"},
        {"upstreams:\n  - url: graph://a@b.c\n    password_file: /t\n    auth: login\n", "not used by API upstreams"},
        {"upstreams:\n  - url: smtps://x.example\n    api_base: https://graph.test\n",
         "only for graph:// and gmail-api:// upstreams"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.yaml);
      CHECK(first_error(c.yaml).find(c.expect) != std::string::npos);
    }
  }

  TEST_CASE("bad input names file:line, the key path and what was expected") {
    struct Case {
      const char* yaml;
      const char* expect;
    } cases[] = {
        {"spool:\n  dir: /x\n  max_byts: 1GiB\n",
         "t.yaml:3: spool.max_byts: unknown key (expected one of: dir, max_bytes, max_messages, min_free_disk)"},
        {"limits:\n  max_message_size: 35MB\n", "t.yaml:2: limits.max_message_size: expected a size like 35MiB"},
        {"limits:\n  idle_timeout: 30\n", "t.yaml:2: limits.idle_timeout: expected a duration like 30s"},
        {"limits:\n  max_recipients: many\n", "t.yaml:2: limits.max_recipients: expected a whole number"},
        {"limits:\n  max_recipients: 10001\n",
         "t.yaml:2: limits.max_recipients: expected a whole number from 1 to 10000, got '10001'"},
        {"listen: [\"localhost:25\"]\n", "t.yaml:1: listen: expected host:port"},
        {"allow_networks: [\"10.0.0.0/40\"]\n", "t.yaml:1: allow_networks: expected an address or network"},
        {"listen: [\"0.0.0.0:2525\"]\n",
         "listen: '0.0.0.0:2525' is not a loopback address; set allow_networks explicitly"},
        {"headers:\n  add_missing: perhaps\n", "t.yaml:2: headers.add_missing: expected true or false"},
        {"bare_newlines: fix\n", "t.yaml:1: bare_newlines: expected one of normalize, reject"},
        {"spool: [1, 2]\n", "t.yaml:1: spool: expected a mapping of keys"},
        {"upstreams:\n  - url: ftp://x\n", "t.yaml:2: upstreams[0].url: unknown scheme"},
        {"upstreams:\n  - url: smtp://mail.example.com\n",
         "upstreams[0].url: smtp:// sends mail and credentials in clear text"},
        {"upstreams:\n  - url: smtp://mail.example.com\n    insecure_plaintext: true\n",
         "only allowed to a loopback host"},
        {"upstreams:\n  - url: smtps://u:secret@mail.example.com\n", "a password in the URL is not accepted"},
        {"upstreams:\n  - url: smtps://mail.example.com\n    colour: blue\n",
         "t.yaml:3: upstreams[0].colour: unknown key"},
        {"upstreams:\n  - url: smtps://h\n    pins: [abc]\n", "upstreams[0].pins: expected a base64 SHA-256"},
        {"delivery:\n  retry: {first: 1h, max: 1m}\n",
         "delivery.retry.max: must not be shorter than delivery.retry.first"},
        {"delivery:\n  idle_hold: 10m\n", "t.yaml:2: delivery.idle_hold: expected at most 5m"},
        {"delivery:\n  retry: {jitter: 2}\n", "delivery.retry.jitter: expected a number from 0 to 1"},
        {"headers:\n  rewrite_from: \"Alerts <a@b>\"\n", "headers.rewrite_from: expected a plain mailbox"},
        {"spool: {dir: x\n", "YAML syntax error"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.yaml);
      std::string e = first_error(c.yaml);
      CAPTURE(e);
      CHECK(e.find(c.expect) != std::string::npos);
    }
  }

  TEST_CASE("every error is reported, not just the first") {
    auto c = load_text("limits:\n  max_recipients: x\n  idle_timeout: y\nfoo: 1\n", "t.yaml", {});
    REQUIRE_FALSE(c);
    CHECK(c.error().size() == 3);
  }

  TEST_CASE("a self-referring alias or absurd nesting is an error, not a stack overflow") {
    // Found by tests/fuzz (config target); the input is in its corpus.
    for (std::string yaml : {std::string("a: &x {b: *x}\n"), std::string(40, '[') + std::string(40, ']') + "\n"}) {
      auto c = load_text(yaml, "t.yaml", {});
      REQUIRE_FALSE(c);
      CHECK(c.error().front().find("t.yaml:1: YAML syntax error: nested deeper than 32 levels") == 0);
    }
  }

  TEST_CASE("text that is not UTF-8 is an error naming the line") {
    // Found by tests/fuzz (config target): check-config could not show such
    // bytes back faithfully.
    auto c = load_text("hostname: ok\nspool:\n  dir: /var/\xc3\xc3x\n", "t.yaml", {});
    REQUIRE_FALSE(c);
    CHECK(c.error().front() == "t.yaml:3: YAML syntax error: not UTF-8 text");
    CHECK(load_text("headers:\n  rewrite_from: \"\"\nspool: {dir: /var/sp\xc3\xb6\xc3\xb6l}\n", "t.yaml", {}));
  }

  TEST_CASE("environment overrides, by the documented rule") {
    Env env{{"SPOOLGATE_SPOOL_DIR", "/data/spool"},
            {"SPOOLGATE_LISTEN", "0.0.0.0:2525, [::]:2525"},
            {"SPOOLGATE_ALLOW_NETWORKS", "10.0.0.0/8"},
            {"SPOOLGATE_LIMITS_MAX_MESSAGE_SIZE", "10MiB"},
            {"SPOOLGATE_DELIVERY_RETRY_FIRST", "30s"},
            {"SPOOLGATE_UPSTREAM_URL", "smtp+starttls://user@smtp.office365.com:587"},
            {"SPOOLGATE_PASSWORD_FILE", "/run/secrets/smtp"}};
    auto c = load_text("spool:\n  dir: /file/value\n", "t.yaml", env);
    if (!c)
      for (const auto& e : c.error()) MESSAGE(e);
    REQUIRE(c);
    CHECK(c->spool.dir == "/data/spool");
    CHECK(c->listen.size() == 2);
    CHECK(c->listen[1].host == "::");
    CHECK(c->limits.max_message_size == 10ULL << 20);
    CHECK(c->delivery.retry.first == spoolgate::Millis(30'000));
    REQUIRE(c->upstreams.size() == 1);
    CHECK(c->upstreams[0].scheme == Scheme::StartTls);
    CHECK(c->upstreams[0].host == "smtp.office365.com");
    CHECK(c->upstreams[0].port == 587);
    CHECK(c->upstreams[0].username == "user");
    CHECK(c->upstreams[0].password_file == "/run/secrets/smtp");
  }

  TEST_CASE("a bad environment value names the variable; unknown variables are listed") {
    CHECK(first_error("", {{"SPOOLGATE_LIMITS_IDLE_TIMEOUT", "soon"}})
              .starts_with("$SPOOLGATE_LIMITS_IDLE_TIMEOUT: limits.idle_timeout"));
    auto c = load_text("", "t.yaml", {{"SPOOLGATE_SPOL_DIR", "/x"}, {"SPOOLGATE_CONFIG", "/y"}});
    REQUIRE(c);
    CHECK(c->ignored_env == std::vector<std::string>{"SPOOLGATE_SPOL_DIR"});
    CHECK(dump(*c).find("# ignored: $SPOOLGATE_SPOL_DIR") != std::string::npos);
  }

  TEST_CASE("devices[].upstream: one name or a list, of upstreams that have those names") {
    const std::string ups =
        "upstreams:\n  - {name: main, url: 'smtps://a.example'}\n"
        "  - {name: lab, url: 'smtps://b.example'}\n";
    auto c = load_text(ups +
                           "devices:\n  - {name: p, upstream: lab}\n  - {name: q, upstream: [lab, main]}\n"
                           "  - {name: r}\n",
                       "t.yaml", {});
    REQUIRE(c);
    CHECK(c->upstreams[1].name == "lab");
    CHECK(c->devices[0].upstream == std::vector<std::string>{"lab"});
    CHECK(c->devices[1].upstream == std::vector<std::string>{"lab", "main"});
    CHECK(c->devices[2].upstream.empty());
    CHECK(first_error(ups + "devices:\n  - {name: p, upstream: [lab, nope]}\n")
              .find("devices[0].upstream: no upstream is named 'nope'") != std::string::npos);
    CHECK(first_error(ups + "devices:\n  - {name: p, upstream: {a: b}}\n").find("devices[0].upstream") !=
          std::string::npos);
    CHECK(first_error("upstreams:\n  - {name: 'a b', url: 'smtps://a.example'}\n").find("upstreams[0].name") !=
          std::string::npos);
    CHECK(first_error(ups + "  - {name: lab, url: 'smtps://c.example'}\n").find("'lab' names two upstreams") !=
          std::string::npos);
  }

  TEST_CASE("routes: the issue's example, one value or a list per key, checked, dumped one line each") {
    const std::string ups =
        "upstreams:\n  - {name: m365, url: 'smtp+starttls://smtp.office365.com:587'}\n"
        "  - {name: ses, url: 'smtps://email-smtp.eu-west-1.amazonaws.com:465'}\n"
        "devices:\n  - {name: scanner}\n";
    auto c = load_text(ups +
                           "routes:\n"
                           "  - {sender: '*@invoices.example.com', upstream: ses}\n"
                           "  - {recipient_domain: partner.example, upstream: [ses, m365]}\n"
                           "  - {client: 10.1.0.0/16, upstream: m365}\n"
                           "  - {device: scanner, sender: ['<>', 'a@b.example'], upstream: m365}\n"
                           "  - {upstream: m365}\n",
                       "t.yaml", {});
    REQUIRE(c);
    REQUIRE(c->routes.size() == 5);
    CHECK(c->routes[0].sender == std::vector<std::string>{"*@invoices.example.com"});
    CHECK(c->routes[1].upstream == std::vector<std::string>{"ses", "m365"});
    CHECK(c->routes[2].client.at(0).str() == "10.1.0.0/16");
    CHECK(c->routes[3].sender == std::vector<std::string>{"<>", "a@b.example"});
    CHECK(c->routes[4].sender.empty());
    std::string d = dump(*c);
    CHECK(d.find("routes:\n  - {sender: [\"*@invoices.example.com\"], upstream: [\"ses\"]}\n") != std::string::npos);
    CHECK(d.find("  - {upstream: [\"m365\"]}\n") != std::string::npos);
    CHECK(first_error(ups + "routes:\n  - {sender: '*@x.example'}\n").find("routes[0].upstream: every route names") !=
          std::string::npos);
    CHECK(
        first_error(ups + "routes:\n  - {upstream: nope}\n").find("routes[0].upstream: no upstream is named 'nope'") !=
        std::string::npos);
    CHECK(first_error(ups + "routes:\n  - {device: printer, upstream: ses}\n")
              .find("routes[0].device: no device is named 'printer'") != std::string::npos);
    CHECK(first_error(ups + "routes:\n  - {sender: 'no at sign', upstream: ses}\n").find("routes[0].sender") !=
          std::string::npos);
    CHECK(first_error(ups + "routes:\n  - {recipient_domain: 'a@b', upstream: ses}\n")
              .find("routes[0].recipient_domain") != std::string::npos);
    CHECK(first_error(ups + "routes:\n  - {client: 'nonsense', upstream: ses}\n").find("routes[0].client") !=
          std::string::npos);
    CHECK(first_error(ups + "routes:\n  - {upstreams: ses}\n").find("routes[0]") != std::string::npos);
  }

  TEST_CASE("the URL's user part is percent-decoded") {
    auto c = load_text("upstreams:\n  - url: smtps://alerts%40example.com@smtp.gmail.com\n", "t.yaml", {});
    REQUIRE(c);
    CHECK(c->upstreams[0].username == "alerts@example.com");
    CHECK(c->upstreams[0].port == 465);
  }

  TEST_CASE("control characters in credentials are rejected, also percent-decoded from the URL") {
    CHECK(first_error("upstreams:\n  - url: smtps://h\n    username: \"a\\nb\"\n")
              .find("upstreams[0].username: must not contain control characters") != std::string::npos);
    CHECK(first_error("upstreams:\n  - url: smtps://h\n    username: \"a\\x01b\"\n")
              .find("upstreams[0].username: must not contain control characters") != std::string::npos);
    CHECK(first_error("upstreams:\n  - url: smtps://a%01auth=Bearer%20x@h\n")
              .find("upstreams[0].username: must not contain control characters") != std::string::npos);
    CHECK(first_error("upstreams:\n  - url: smtps://h\n    password_file: \"/x\\ny\"\n")
              .find("must not contain CR, LF or NUL") != std::string::npos);
  }

  TEST_CASE("dump masks nothing it should show and prints every section") {
    auto c =
        load_text("upstreams:\n  - url: smtps://alerts@smtp.gmail.com:465\n    password_env: GMAIL_PW\n", "t.yaml", {});
    REQUIRE(c);
    std::string d = dump(*c);
    CHECK(d.find("url: \"smtps://alerts@smtp.gmail.com:465\"") != std::string::npos);
    CHECK(d.find("password_env: \"GMAIL_PW\"") != std::string::npos);
    CHECK(d.find("timeouts: {connect: 30s") != std::string::npos);
    // What dump prints loads again to the same configuration.
    auto again = load_text(d, "dump.yaml", {});
    if (!again)
      for (const auto& e : again.error()) MESSAGE(e);
    REQUIRE(again);
    std::string d2 = dump(*again);
    CHECK(d2.substr(d2.find('\n')) == d.substr(d.find('\n')));
  }
}
