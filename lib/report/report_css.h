// The HTML report's stylesheet, lib/report/report.css, compiled in by CMake.
#pragma once

namespace bertq {

const char* report_css();

}  // namespace bertq
