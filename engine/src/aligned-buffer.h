#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace sbs {

// A resizable 64-byte aligned array of trivially copyable T; contents are not preserved on growth.
template <typename T>
class AlignedBuffer {
 public:
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  size_t size() const { return size_; }
  void reserve_discard(size_t count) {
    if (count <= size_) return;
    size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    data_.reset(static_cast<T*>(p));
    size_ = count;
  }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> data_;
  size_t size_ = 0;
};

}  // namespace sbs
