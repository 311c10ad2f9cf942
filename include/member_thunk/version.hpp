// member_thunk: the library's version (also read by CMake, so it lives here only).
#pragma once

#define MEMBER_THUNK_VERSION_MAJOR 0
#define MEMBER_THUNK_VERSION_MINOR 1
#define MEMBER_THUNK_VERSION_PATCH 0
