// StreamDecoder: holds back an unfinished UTF-8 sequence between tokens.
#include "tokenizer/stream_decoder.h"

#include "tokenizer/utf8.h"

namespace hylo::tokenizer {

std::string StreamDecoder::push(int32_t id) {
  if (!show_special_ && tokenizer_->is_control(id)) return {};
  pending_ += tokenizer_->token_to_piece(id);
  const size_t keep = utf8_incomplete_tail(pending_);
  std::string out = utf8_sanitize(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8_sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace hylo::tokenizer
