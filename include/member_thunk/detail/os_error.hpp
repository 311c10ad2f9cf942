// member_thunk: how a failed OS call becomes an exception.
#pragma once

#include "../exception.hpp"
#include "os/result.hpp"

#include <string>

namespace member_thunk::detail
{
	/// Throws the os_error for a failed OS call: what() says what the library was doing, which call failed and, when
	/// the back end knows, why the OS refused.
	[[noreturn]] inline void throw_os_error(const char* doing, const os::result& failed)
	{
		std::string what = "member_thunk: could not ";
		what += doing;
		what += ": ";
		what += failed.call();
		what += " failed";
		if (failed.reason() != nullptr)
		{
			what += " because ";
			what += failed.reason();
		}
		throw os_error(failed.error(), what);
	}
} // namespace member_thunk::detail
