// SPDX-License-Identifier: MIT
// smtp/trouble: one test row per row of the table in trouble.h.
#include "smtp/trouble.h"

#include <doctest/doctest.h>

using namespace spoolgate::smtp;

namespace {
Reply reply(int code, std::string text) { return Reply{code, {std::move(text)}}; }
}  // namespace

TEST_SUITE("smtp/trouble") {
  TEST_CASE("the classification table, row by row") {
    struct Row {
      int code;
      const char* text;
      Trouble want;
    };
    const Row rows[] = {
        {530, "5.7.0 Authentication required", Trouble::Misconfigured},                                        // 1
        {530, "5.7.57 Client not authenticated to send mail", Trouble::Misconfigured},                         // 1, 3
        {535, "5.7.8 Username and Password not accepted", Trouble::Misconfigured},                             // 2
        {550, "5.7.57 Client not authenticated to send mail. [BN8NAM12FT067]", Trouble::Misconfigured},        // 3
        {550, "5.7.30 Basic authentication is not supported for Client Submission.", Trouble::Misconfigured},  // 4
        {535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant",
         Trouble::Misconfigured},  // 5
        {550, "5.7.139 Authentication unsuccessful, the user credentials were incorrect", Trouble::Misconfigured},
        {550, "5.7.60 SMTP; Client does not have permissions to send as this sender", Trouble::Misconfigured},  // 6
        {554, "5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied",
         Trouble::Misconfigured},                                                                       // 6
        {554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", Trouble::Quota},  // 7
        {550, "5.4.5 Daily user sending limit exceeded.", Trouble::Quota},                              // 8
        {550, "5.4.5 Daily sending quota exceeded.", Trouble::Quota},                                   // 8
        {454, "Throttling failure: Daily message quota exceeded.", Trouble::Quota},                     // 8: SES
        {550, "5.7.1 Daily SMTP relay limit exceeded for user. To learn more about SMTP relay sending limits",
         Trouble::Quota},                                                                             // 8: Google relay
        {421, "4.7.0 Try again later, closing connection", Trouble::Throttled},                       // 9
        {454, "Throttling failure: Maximum sending rate exceeded.", Trouble::Throttled},              // 9: SES
        {450, "4.2.1 Peak SMTP relay limit exceeded for customer", Trouble::Throttled},               // 9: Google relay
        {432, "4.7.12 A password transition is needed", Trouble::Misconfigured},                      // 5
        {432, "4.3.2 try later", Trouble::Throttled},                                                 // 9
        {451, "4.3.2 System not accepting network messages", Trouble::Throttled},                     // 9
        {451, "4.3.0 temporary trouble", Trouble::Temporary},                                         // 10
        {452, "4.2.2 mailbox full", Trouble::Temporary},                                              // 10
        {450, "mailbox busy", Trouble::Temporary},                                                    // 10
        {550, "5.1.1 The email account that you tried to reach does not exist", Trouble::Permanent},  // 11
        {552, "5.2.2 mailbox full", Trouble::Permanent},              // 11: the recipient's quota
        {554, "5.7.1 Message rejected as spam", Trouble::Permanent},  // 11
        {550, "no such user", Trouble::Permanent},                    // 11
        {250, "2.1.5 Ok", Trouble::Positive},                         // 12
    };
    for (const Row& row : rows) {
      CAPTURE(row.code);
      CAPTURE(row.text);
      CHECK(classify(reply(row.code, row.text)) == row.want);
    }
    CHECK(ours(Trouble::Misconfigured));
    CHECK(ours(Trouble::Quota));
    CHECK_FALSE(ours(Trouble::Permanent));
    CHECK_FALSE(ours(Trouble::Throttled));
  }
}
