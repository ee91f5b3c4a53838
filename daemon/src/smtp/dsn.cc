// SPDX-License-Identifier: MIT
#include "smtp/dsn.h"

#include "core/clock.h"

namespace spoolgate::smtp {

std::string status_of(std::string_view reply) {
  // RFC 3463: class "." subject "." detail, after the basic code.
  if (reply.size() >= 9 && reply[3] == ' ') {
    std::string_view e = reply.substr(4);
    size_t end = e.find(' ');
    e = e.substr(0, end);
    int dots = 0;
    bool ok = !e.empty() && (e[0] == '2' || e[0] == '4' || e[0] == '5');
    for (char c : e) {
      if (c == '.')
        ++dots;
      else if (c < '0' || c > '9')
        ok = false;
    }
    if (ok && dots == 2 && e[1] == '.') return std::string(e);
  }
  char cls = !reply.empty() && (reply[0] == '4' || reply[0] == '5') ? reply[0] : '5';
  return std::string(1, cls) + ".0.0";
}

std::string build_dsn(const DsnInput& in) {
  std::string boundary = in.dsn_id + "/" + in.hostname;
  std::string date = rfc5322_date(in.now);
  std::string o;
  auto line = [&](std::string_view l) {
    // Our text never starts a line with a dot, except what we copy.
    o.append(l);
    o += "\r\n";
  };
  line("From: Mail Delivery System <MAILER-DAEMON@" + in.hostname + ">");
  line("To: <" + in.original_sender + ">");
  line("Subject: Undelivered Mail Returned to Sender");
  line("Date: " + date);
  line("Message-ID: <" + in.dsn_id + "@" + in.hostname + ">");
  line("Auto-Submitted: auto-replied");
  line("MIME-Version: 1.0");
  line("Content-Type: multipart/report; report-type=delivery-status;");
  line("\tboundary=\"" + boundary + "\"");
  line("");
  line("This is a MIME-encapsulated message.");
  line("");
  line("--" + boundary);
  line("Content-Description: Notification");
  line("Content-Type: text/plain; charset=us-ascii");
  line("");
  line("This is the mail relay at " + in.hostname + ".");
  line("");
  line("Your message (queue id " + in.queue_id + ") could not be delivered to the");
  line("recipients below. This is a permanent failure; it will not be retried.");
  line("");
  for (const auto& r : in.recipients) line("<" + r.address + ">: " + r.reply);
  line("");
  line("--" + boundary);
  line("Content-Description: Delivery report");
  line("Content-Type: message/delivery-status");
  line("");
  line("Reporting-MTA: dns; " + in.hostname);
  line("X-Spoolgate-Queue-ID: " + in.queue_id);
  line("Arrival-Date: " + rfc5322_date(in.arrived));
  for (const auto& r : in.recipients) {
    line("");
    line("Final-Recipient: rfc822; " + r.address);
    line("Action: failed");
    line("Status: " + (r.expired ? std::string("4.4.7") : status_of(r.reply)));
    if (r.expired)
      line("Diagnostic-Code: X-Spoolgate; " + r.reply);
    else
      line("Diagnostic-Code: smtp; " + r.reply);
  }
  line("");
  line("--" + boundary);
  line("Content-Description: Undelivered Message Headers");
  line("Content-Type: text/rfc822-headers");
  line("");
  o += in.original_headers;  // already canonical
  if (!in.original_headers.empty() && !in.original_headers.ends_with("\r\n")) o += "\r\n";
  line("");
  line("--" + boundary + "--");
  return o;
}

}  // namespace spoolgate::smtp
