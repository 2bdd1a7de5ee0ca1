#include "archive/pickle_scan.h"

#include <cstring>
#include <limits>

#include "base/error.h"
#include "base/text.h"

namespace bertq {
namespace {

// Storage classes the TorchScript pickler names (torch.<Name>Storage), with
// their element sizes: LibTorch's AT_FORALL_SCALAR_TYPES_WITH_COMPLEX_AND_QINTS.
struct StorageType {
  const char* name;
  int64_t itemsize;
};
constexpr StorageType kStorageTypes[] = {
    {"Byte", 1},  {"Char", 1},   {"Short", 2},       {"Int", 4},          {"Long", 8},           {"Half", 2},
    {"Float", 4}, {"Double", 8}, {"ComplexHalf", 4}, {"ComplexFloat", 8}, {"ComplexDouble", 16}, {"Bool", 1},
    {"QInt8", 1}, {"QUInt8", 1}, {"QInt32", 4},      {"BFloat16", 2},     {"QUInt4x2", 1},       {"QUInt2x4", 1},
};

// What the scan needs to know of a value; everything else is Other. Values
// live in one arena and refer to each other by index: a hostile pickle can
// fetch a large value from the memo many times (each fetch costs O(1)), and
// nest values 200,000 deep (nothing here recurses over that nesting, not even
// the destructor).
using Val = uint32_t;
struct Node {
  enum Kind {
    Other,
    Int,
    Str,
    Tuple,
    StorageClass,
    Storage,
    Tensor,
    RebuildTensor,
    RebuildSparse,
    Callable
  } kind = Other;
  int64_t i = 0;           // Int value; StorageClass itemsize; Storage/Tensor index
  std::string s;           // Str; StorageClass dtype name
  std::vector<Val> items;  // Tuple: its items; Other: what it holds (list items, dict entries, state)
};

class Scanner {
 public:
  Scanner(std::string_view bytes, const std::string& source) : p_(bytes), source_(source) {}

  PickleScan run() {
    if (take<uint8_t>() != 0x80) fail("does not start with a pickle PROTO opcode");
    const uint8_t protocol = take<uint8_t>();
    if (protocol != 2) fail("uses pickle protocol " + std::to_string(protocol) + " (TorchScript writes 2)");
    while (true) {
      const size_t at = pos_;
      const uint8_t op = take<uint8_t>();
      if (op == '.') break;  // STOP
      step(op, at);
    }
    if (stack_.size() != 1) fail("leaves " + std::to_string(stack_.size()) + " values on the stack");
    // The result and everything the memo still holds: LibTorch destroys both.
    std::vector<Val> roots{stack_.back()};
    roots.insert(roots.end(), memo_.begin(), memo_.end());
    check_depth(roots);
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(const std::string& what, size_t at = SIZE_MAX) const {
    throw Error(
        ErrorKind::Model,
        source_ + " is corrupted: the pickle " + what + " (at byte " + std::to_string(at == SIZE_MAX ? pos_ : at) + ")",
        "the file was damaged or was not written by torch.jit.save; get a fresh copy");
  }

  template <typename T>
  T take() {
    if (p_.size() - pos_ < sizeof(T)) fail("ends early");
    T v;
    std::memcpy(&v, p_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string take_bytes(uint64_t n) {
    if (p_.size() - pos_ < n) fail("ends early");
    std::string s(p_.substr(pos_, n));
    pos_ += n;
    return s;
  }

  std::string take_line() {
    const size_t nl = p_.find('\n', pos_);
    if (nl == std::string_view::npos) fail("ends early");
    std::string s(p_.substr(pos_, nl - pos_));
    pos_ = nl + 1;
    return s;
  }

  Val make(Node::Kind k, int64_t i = 0, std::string s = {}, std::vector<Val> items = {}) {
    // Each opcode makes at most one node, so the arena is bounded by the
    // pickle's length.
    nodes_.push_back(Node{k, i, std::move(s), std::move(items)});
    return static_cast<Val>(nodes_.size() - 1);
  }
  const Node& node(Val v) const { return nodes_[v]; }

  Val pop() {
    if (stack_.empty()) fail("pops an empty stack");
    const Val v = stack_.back();
    stack_.pop_back();
    return v;
  }

  void push(Val v) {
    if (stack_.size() > (1u << 24)) fail("grows its stack past 16M values");
    stack_.push_back(v);
  }

  size_t pop_mark() {
    if (marks_.empty()) fail("closes a MARK that was never opened");
    const size_t m = marks_.back();
    marks_.pop_back();
    if (m > stack_.size()) fail("pops below its MARK");
    return m;
  }

  // The values from `m` to the top, removed from the stack.
  std::vector<Val> take_from(size_t m) {
    std::vector<Val> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }

  // Puts `items` into the container on top of the stack (APPEND, SETITEM,
  // BUILD): a list, dict or object that now holds them, and every handle to
  // it (the memo's too) sees that.
  void put_into_top(std::vector<Val> items, const char* what, size_t at) {
    if (stack_.empty()) fail(what, at);
    Node& c = nodes_[stack_.back()];
    if (c.kind != Node::Other) {
      // Only containers take items; anything else becomes an opaque value
      // that still holds them (LibTorch would refuse or ignore it).
      stack_.back() = make(Node::Other, 0, {}, {stack_.back()});
    }
    auto& held = nodes_[stack_.back()].items;
    held.insert(held.end(), items.begin(), items.end());
  }

  void memo_put(uint64_t id) {
    if (stack_.empty()) fail("memoizes an empty stack");
    // torch.jit.save numbers memo entries in order; a jump would make
    // LibTorch allocate every entry up to the id.
    if (id > memo_.size())
      fail("skips memo ids (" + std::to_string(id) + " after " + std::to_string(memo_.size()) + ")");
    if (id == memo_.size())
      memo_.push_back(stack_.back());
    else
      memo_[id] = stack_.back();
  }

  Val memo_get(uint64_t id) {
    if (id >= memo_.size()) fail("reads memo entry " + std::to_string(id) + ", which was never written");
    return memo_[id];
  }

  bool is_int(Val v) const { return node(v).kind == Node::Int; }

  std::vector<int64_t> int_tuple(Val v, const char* what, size_t at) {
    if (node(v).kind != Node::Tuple) fail(std::string("gives a tensor ") + what + " that is not a tuple", at);
    std::vector<int64_t> out;
    for (Val e : node(v).items) {
      if (!is_int(e)) fail(std::string("gives a tensor ") + what + " that is not all integers", at);
      if (node(e).i < 0) fail(std::string("gives a tensor a negative ") + what, at);
      out.push_back(node(e).i);
    }
    return out;
  }

  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) and
  // _rebuild_qtensor(storage, offset, size, stride, qparams, ...).
  Val rebuild_tensor(Val args_v, size_t at) {
    const Node& args = node(args_v);
    if (args.kind != Node::Tuple || args.items.size() < 4) fail("rebuilds a tensor from too few arguments", at);
    const Node& storage = node(args.items[0]);
    if (storage.kind != Node::Storage) fail("rebuilds a tensor from something that is not a storage", at);
    if (!is_int(args.items[1]) || node(args.items[1]).i < 0) fail("gives a tensor a bad storage offset", at);
    PickledTensor t;
    t.storage = static_cast<size_t>(storage.i);
    t.offset = node(args.items[1]).i;
    t.sizes = int_tuple(args.items[2], "size", at);
    t.strides = int_tuple(args.items[3], "stride", at);
    if (t.sizes.size() != t.strides.size()) fail("gives a tensor sizes and strides of different lengths", at);
    if (storage_extent(t) < 0) fail("gives a tensor sizes and strides whose extent overflows", at);
    out_.tensors.push_back(std::move(t));
    const size_t index = out_.tensors.size() - 1;
    // _rebuild_qtensor's quantizer parameters: (qscheme, scale, zero_point)
    // per tensor, (qscheme, scales, zero_points, axis) per channel, where
    // scales and zero points are tensors with one value per channel along
    // `axis`; LibTorch (and a packed weight's prepack) reads that many.
    if (args.items.size() >= 5 && node(args.items[4]).kind == Node::Tuple) {
      const auto& q = node(args.items[4]).items;
      if (q.size() == 4 && node(q[1]).kind == Node::Tensor && node(q[2]).kind == Node::Tensor && is_int(q[3]))
        out_.per_channel.push_back(
            {index, static_cast<size_t>(node(q[1]).i), static_cast<size_t>(node(q[2]).i), node(q[3]).i});
    }
    return make(Node::Tensor, static_cast<int64_t>(index), {}, {args_v});
  }

  // The deepest chain of values the pickle builds, without recursion: LibTorch
  // builds and later destroys them recursively, so a hostile pickle of 200,000
  // nested 1-tuples (2.2 KB) would overflow its stack. A value that holds
  // itself (a list appended to itself) is refused as well.
  void check_depth(const std::vector<Val>& roots) {
    constexpr uint32_t kMaxDepth = 1000;
    enum : uint8_t { Unseen, Open, Done };
    std::vector<uint8_t> state(nodes_.size(), Unseen);
    std::vector<uint32_t> depth(nodes_.size(), 0);
    struct Frame {
      Val v;
      size_t next;
    };
    const std::string too_deep =
        "nests values more than " + std::to_string(kMaxDepth) + " deep (TorchScript nests a few levels)";
    for (Val root : roots) {
      if (state[root] != Unseen) continue;
      std::vector<Frame> path{{root, 0}};
      state[root] = Open;
      while (!path.empty()) {
        const Val v = path.back().v;
        const auto& items = nodes_[v].items;
        if (path.back().next < items.size()) {
          const Val c = items[path.back().next++];
          if (state[c] == Open) fail("builds a value that holds itself");
          if (state[c] == Unseen) {
            if (path.size() >= kMaxDepth) fail(too_deep);
            state[c] = Open;
            path.push_back({c, 0});
          }
          continue;
        }
        uint32_t d = 0;
        for (Val c : items) d = std::max(d, depth[c] + 1);
        if (d >= kMaxDepth) fail(too_deep);
        depth[v] = d;
        state[v] = Done;
        path.pop_back();
      }
    }
  }

  void step(uint8_t op, size_t at) {
    switch (op) {
      case ']':  // EMPTY_LIST
      case '}':  // EMPTY_DICT
        push(make(Node::Other));
        break;
      case ')':  // EMPTY_TUPLE
        push(make(Node::Tuple));
        break;
      case 'q':  // BINPUT
        memo_put(take<uint8_t>());
        break;
      case 'r':  // LONG_BINPUT
        memo_put(take<uint32_t>());
        break;
      case 'h':  // BINGET
        push(memo_get(take<uint8_t>()));
        break;
      case 'j':  // LONG_BINGET
        push(memo_get(take<uint32_t>()));
        break;
      case '(':  // MARK
        if (marks_.size() > (1u << 20)) fail("nests MARKs too deeply");
        marks_.push_back(stack_.size());
        break;
      case 0x88:  // NEWTRUE
      case 0x89:  // NEWFALSE
      case 'N':   // NONE
        push(make(Node::Other));
        break;
      case 'K':  // BININT1
        push(make(Node::Int, take<uint8_t>()));
        break;
      case 'M':  // BININT2
        push(make(Node::Int, take<uint16_t>()));
        break;
      case 'J':  // BININT
        push(make(Node::Int, take<int32_t>()));
        break;
      case 0x8a: {  // LONG1: LibTorch reads only 8-byte ones
        const uint8_t n = take<uint8_t>();
        if (n != 8) fail("holds a LONG1 of " + std::to_string(n) + " bytes (LibTorch reads 8)", at);
        push(make(Node::Int, take<int64_t>()));
        break;
      }
      case 'X': {  // BINUNICODE
        const uint32_t n = take<uint32_t>();
        push(make(Node::Str, 0, take_bytes(n)));
        break;
      }
      case 0x8d: {  // BINUNICODE8 (read by LibTorch 2.x)
        const uint64_t n = take<uint64_t>();
        push(make(Node::Str, 0, take_bytes(n)));
        break;
      }
      case 'a': {  // APPEND (2.x): value -> into the list below it
        const Val v = pop();
        put_into_top({v}, "appends to nothing", at);
        break;
      }
      case 's': {  // SETITEM (2.x): key, value -> into the dict below them
        const Val v = pop();
        const Val k = pop();
        put_into_top({k, v}, "sets an item of nothing", at);
        break;
      }
      case 'G':  // BINFLOAT
        take<double>();
        push(make(Node::Other));
        break;
      case 't': {  // TUPLE
        const size_t m = pop_mark();
        push(make(Node::Tuple, 0, {}, take_from(m)));
        break;
      }
      case 0x85:    // TUPLE1
      case 0x86:    // TUPLE2
      case 0x87: {  // TUPLE3
        const size_t n = op - 0x84u;
        std::vector<Val> items(n);
        for (size_t k = n; k-- > 0;) items[k] = pop();
        push(make(Node::Tuple, 0, {}, std::move(items)));
        break;
      }
      case 'e': {  // APPENDS: items after the mark go into the list below it
        const size_t m = pop_mark();
        if (m == 0) fail("appends to nothing", at);
        put_into_top(take_from(m), "appends to nothing", at);
        break;
      }
      case 'l': {  // LIST
        const size_t m = pop_mark();
        push(make(Node::Other, 0, {}, take_from(m)));
        break;
      }
      case 'd': {  // DICT
        const size_t m = pop_mark();
        if ((stack_.size() - m) % 2) fail("builds a dict from an odd number of values", at);
        push(make(Node::Other, 0, {}, take_from(m)));
        break;
      }
      case 'u': {  // SETITEMS
        const size_t m = pop_mark();
        if (m == 0) fail("sets items of nothing", at);
        if ((stack_.size() - m) % 2) fail("sets items from an odd number of values", at);
        put_into_top(take_from(m), "sets items of nothing", at);
        break;
      }
      case 'c': {  // GLOBAL
        const std::string module = take_line();
        const std::string name = take_line();
        if (module == "torch._utils" && (name == "_rebuild_tensor_v2" || name == "_rebuild_qtensor")) {
          push(make(Node::RebuildTensor));
        } else if (module == "torch._utils" && name == "_rebuild_sparse_tensor") {
          out_.has_sparse = true;
          push(make(Node::RebuildSparse));
        } else if (module == "torch" && name.size() > 7 && name.compare(name.size() - 7, 7, "Storage") == 0) {
          const std::string dtype = name.substr(0, name.size() - 7);
          int64_t itemsize = 0;
          for (const auto& t : kStorageTypes)
            if (dtype == t.name) itemsize = t.itemsize;
          if (!itemsize) fail("names an unknown storage type torch." + printable(name), at);
          push(make(Node::StorageClass, itemsize, dtype));
        } else {
          push(make(Node::Callable));
        }
        break;
      }
      case 0x81: {  // NEWOBJ: class, args -> object
        const Val args = pop();
        pop();
        push(make(Node::Other, 0, {}, {args}));
        break;
      }
      case 'b': {  // BUILD: object, state -> object
        const Val state = pop();
        put_into_top({state}, "builds nothing", at);
        break;
      }
      case 'R': {  // REDUCE: callable, args -> result
        const Val arg = pop();
        const Val fn = pop();
        if (node(fn).kind == Node::RebuildTensor)
          push(rebuild_tensor(arg, at));
        else
          push(make(Node::Other, 0, {}, {arg}));  // the result may be (or hold) its arguments
        break;
      }
      case 'Q': {  // BINPERSID: ('storage', dtype, key, location, numel)
        const Val tv = pop();
        const Node& t = node(tv);
        if (t.kind != Node::Tuple || t.items.size() != 5 || node(t.items[0]).kind != Node::Str ||
            node(t.items[0]).s != "storage")
          fail("holds a persistent id that is not a storage", at);
        const Node& dtype = node(t.items[1]);
        const Node& key = node(t.items[2]);
        if (dtype.kind != Node::StorageClass) fail("gives a storage no dtype", at);
        if (key.kind != Node::Str || key.s.empty()) fail("gives a storage no record name", at);
        if (node(t.items[3]).kind != Node::Str) fail("gives a storage no device", at);
        if (!is_int(t.items[4]) || node(t.items[4]).i < 0) fail("gives a storage a negative element count", at);
        out_.storages.push_back({key.s, node(t.items[4]).i, dtype.i, dtype.s});
        push(make(Node::Storage, static_cast<int64_t>(out_.storages.size() - 1)));
        break;
      }
      default:
        fail("holds opcode 0x" + hex(op) + ", which LibTorch's unpickler does not read", at);
    }
  }

  static std::string hex(uint8_t b) {
    static const char* digits = "0123456789abcdef";
    return {digits[b >> 4], digits[b & 15]};
  }

  std::string_view p_;
  size_t pos_ = 0;
  const std::string& source_;
  std::vector<Node> nodes_;
  std::vector<Val> stack_;
  std::vector<size_t> marks_;
  std::vector<Val> memo_;
  PickleScan out_;
};

}  // namespace

int64_t storage_extent(const PickledTensor& t) {
  __int128 extent = 1;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    if (t.sizes[d] == 0) return 0;
    extent += static_cast<__int128>(t.sizes[d] - 1) * t.strides[d];
    if (extent > INT64_MAX) return -1;  // checked each step: the sum cannot wrap
  }
  extent += t.offset;
  if (extent > INT64_MAX) return -1;
  return static_cast<int64_t>(extent);
}

PickleScan scan_pickle(std::string_view bytes, const std::string& source) { return Scanner(bytes, source).run(); }

}  // namespace bertq
