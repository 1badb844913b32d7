// A read-only memory map of a whole file. Weights are used in place from it; nothing is copied
// (unless the file is read into memory instead: `hylo run --no-mmap`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/result.h"

namespace hylo {

class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  ~MappedFile();

  // read_into_memory: read the whole file into anonymous memory instead of mapping it (the
  // pages then do not depend on the file and are not evicted back to it).
  static Result<MappedFile> open(const std::string& path, bool read_into_memory = false);

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Hints the kernel to read [offset, offset+len) ahead (MADV_WILLNEED); best effort.
  void prefetch(uint64_t offset, uint64_t len) const;
  // Drops the whole pages inside [p, p+len) of a read-only file mapping from this process
  // (MADV_DONTNEED): they are read from the file again if touched. For data copied elsewhere.
  static void release(const void* p, uint64_t len);

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace hylo
