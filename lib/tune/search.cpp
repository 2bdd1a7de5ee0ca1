#include "tune/search.h"

#include <algorithm>
#include <optional>

namespace bertq {

SearchResult search_levels(const std::vector<std::vector<double>>& errors, const std::vector<std::string>& names,
                           const MeetsTolerance& meets) {
  const size_t n = errors.size();
  std::vector<size_t> steps;  // module index per upgrade
  {
    Levels cur(n, 0);
    while (true) {
      std::optional<size_t> best;
      for (size_t i = 0; i < n; ++i) {
        if (cur[i] >= errors[i].size()) continue;
        if (!best || errors[i][cur[i]] > errors[*best][cur[*best]]) best = i;
      }
      if (!best) break;
      steps.push_back(*best);
      ++cur[*best];
    }
  }
  auto levels_after = [&](size_t k, const std::vector<size_t>& undone) {
    Levels lv(n, 0);
    for (size_t s = 0; s < k; ++s)
      if (std::find(undone.begin(), undone.end(), s) == undone.end()) ++lv[steps[s]];
    return lv;
  };

  size_t lo = 0, hi = steps.size();
  if (!meets(levels_after(0, {}), "cheapest everywhere", 0)) {
    while (hi - lo > 1) {
      const size_t mid = lo + (hi - lo) / 2;
      if (meets(levels_after(mid, {}), "search", mid))
        hi = mid;
      else
        lo = mid;
    }
  } else {
    hi = 0;
  }
  const size_t k = hi;
  // All float meets the tolerance by definition; measured for the record,
  // then the undos may still find a choice the order of upgrades missed.
  if (k == steps.size()) meets(levels_after(k, {}), "all float", k);
  // The last few upgrades are the likeliest to be unneeded.
  std::vector<size_t> undone;
  for (size_t s = k; s-- > 0;) {
    std::vector<size_t> trial = undone;
    trial.push_back(s);
    if (meets(levels_after(k, trial), "undo " + names[steps[s]], k)) undone = trial;
    if (k - s >= 4) break;
  }
  if (k == steps.size() && undone.empty()) return {levels_after(k, {}), true};
  return {levels_after(k, undone), false};
}

}  // namespace bertq
