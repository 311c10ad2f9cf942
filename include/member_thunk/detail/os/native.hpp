// member_thunk: the OS back end of the system being compiled for.
#pragma once

#include "../config.hpp"

#if defined(MEMBER_THUNK_OS_WINDOWS)
#include "windows.hpp"
namespace member_thunk::detail::os
{
	using native = windows;
}
#else
#include "posix.hpp"
namespace member_thunk::detail::os
{
	using native = posix;
}
#endif
