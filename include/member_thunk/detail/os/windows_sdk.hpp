// member_thunk: <windows.h>, included the one way the library includes it: without the rarely used APIs
// (WIN32_LEAN_AND_MEAN) and without the min/max macros that break std::min and std::numeric_limits (NOMINMAX).
#pragma once

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
