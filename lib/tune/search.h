// tune's choice of precisions, apart from the models it is made for: a pure
// function of each module's errors and of a "meets the tolerance" callback,
// so the search is tested without converting anything.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace bertq {

// A choice: for each module, how many levels it was raised from its cheapest
// (errors[i].size() means float).
using Levels = std::vector<size_t>;

// Says whether the model with these levels meets the tolerance. `note` says
// why it is asked ("cheapest everywhere", "search", "undo PATH", "all float")
// and `upgrades` how many upgrades the choice applies. Called at most once
// per distinct question in the order the search asks them.
using MeetsTolerance = std::function<bool(const Levels& levels, const std::string& note, size_t upgrades)>;

struct SearchResult {
  Levels levels;
  bool only_float = false;  // no choice with a quantized module met the tolerance
};

// errors[i][l]: module i's error at its level l (cheapest first); names[i]:
// its path, for the notes.
// 1. Every upgrade in order: the module whose current level errs most goes up
//    one level (ties: the first module), until every module is float.
// 2. The fewest upgrades that meet the tolerance, by binary search (all
//    float meets it by definition and is not asked, unless nothing else
//    meets it: then it is asked once, for the record).
// 3. Each of the last (up to four) applied upgrades is undone, latest first,
//    if the model still meets the tolerance without it. When all were
//    needed and none can be undone, only_float is set.
SearchResult search_levels(const std::vector<std::vector<double>>& errors, const std::vector<std::string>& names,
                           const MeetsTolerance& meets);

}  // namespace bertq
