// What an action::FileJob does, as a plain blocking function: the Driver
// runs it on libuv's thread pool; tests call it directly.
#pragma once

#include "servent/core/types.hpp"

namespace sv {

FileResult run_file_job(const action::FileJob& job);

}  // namespace sv
