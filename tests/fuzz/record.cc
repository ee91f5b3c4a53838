// SPDX-License-Identifier: MIT
// The spool's message header and state records. Oracles: a header that
// decodes re-encodes to a header that decodes to the same envelope (a
// corrupt file is rejected, never misread as something else); a state file
// never leaves the per-recipient vectors out of step with the recipients.
#include "oracle.h"
#include "spool/record.h"

using namespace spoolgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::uint64_t file_size = in.ConsumeIntegral<std::uint32_t>();
  std::string head = in.ConsumeRandomLengthString(8192);
  std::string state = in.ConsumeRemainingBytesAsString();
  auto r = spool::decode_header(head, std::max<std::uint64_t>(file_size, head.size()));
  spool::Record rec;
  if (r) {
    rec = *r;
    SG_REQUIRE(rec.content_offset <= std::max<std::uint64_t>(file_size, head.size()));
    auto again = spool::encode_header(rec);
    SG_REQUIRE(again.has_value());
    std::string text = *again;
    text.replace(spool::content_size_offset(), 20, spool::encode_size(rec.size));
    auto back = spool::decode_header(text, text.size() + rec.size);
    SG_REQUIRE(back.has_value());
    SG_REQUIRE(back->id == rec.id && back->sender == rec.sender && back->recipients == rec.recipients &&
               back->size == rec.size);
  } else {
    rec.recipients = {"a@example.com", "b@example.com"};
  }
  rec.normalize();
  if (spool::decode_state(state, rec)) {
    SG_REQUIRE(rec.rcpt_state.size() == rec.recipients.size());
    SG_REQUIRE(rec.rcpt_reply.size() == rec.recipients.size());
    spool::Record copy = rec;
    SG_REQUIRE(spool::decode_state(spool::encode_state(rec), copy).has_value());
    SG_REQUIRE(copy.attempts == rec.attempts && copy.next_attempt == rec.next_attempt &&
               copy.rcpt_state == rec.rcpt_state);
  }
  return 0;
}
