#include "base/error.h"

#include "base/enum_names.h"

namespace bertq {
namespace {

const EnumNames<ErrorKind>& error_kind_names() {
  static const EnumNames<ErrorKind> names{{ErrorKind::Usage, "usage"},
                                          {ErrorKind::Config, "config"},
                                          {ErrorKind::Model, "model"},
                                          {ErrorKind::Io, "io"},
                                          {ErrorKind::Unsupported, "unsupported"},
                                          {ErrorKind::Coverage, "coverage"},
                                          {ErrorKind::Tolerance, "tolerance"},
                                          {ErrorKind::Internal, "internal"}};
  return names;
}

}  // namespace

std::string to_string(ErrorKind kind) { return error_kind_names().name(kind); }

std::optional<ErrorKind> error_kind_from_name(const std::string& name) { return error_kind_names().find(name); }

}  // namespace bertq
