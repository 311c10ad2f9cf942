// Test support: whether the CPU implements Arm BTI (Linux AArch64), so that a test can exercise guarded pages.
#pragma once

#if defined(__linux__) && defined(__aarch64__)
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include <sys/auxv.h>

namespace test
{
	/// True when the CPU implements BTI. The aarch64 test presets run on qemu's maximal CPU, which has it, and say so
	/// (MEMBER_THUNK_EXPECT_BTI=1): there a CPU without BTI fails the calling test instead of letting it pass untested.
	/// Elsewhere the caller warns that it tested nothing.
	[[nodiscard]] inline bool cpu_has_bti()
	{
		constexpr unsigned long hwcap2_bti = 1UL << 17; // HWCAP2_BTI (asm/hwcap.h)
		const bool has = (::getauxval(AT_HWCAP2) & hwcap2_bti) != 0;
		const char* const expected = std::getenv("MEMBER_THUNK_EXPECT_BTI");
		if (expected != nullptr && std::string(expected) == "1")
			REQUIRE(has);
		if (!has)
			WARN("not tested: this CPU does not implement BTI (getauxval(AT_HWCAP2) lacks HWCAP2_BTI)");
		return has;
	}
} // namespace test
#endif
