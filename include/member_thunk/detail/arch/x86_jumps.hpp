// member_thunk: the x86 direct jumps, as the x86-64 and i386 encoders both decode them (follow_jumps). The two
// differ only in their landing pad (endbr64, endbr32) and in the width at which addresses wrap around.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace member_thunk::detail::arch::x86_jumps
{
	inline constexpr std::byte jmp_rel32{0xE9};
	inline constexpr std::byte jmp_rel8{0xEB};

	/// If the code at `address` starts with an unconditional direct jump (`jmp rel32` or `jmp rel8`, after an
	/// optional `landing_pad`), where that jump goes, wrapped to the bits of `address_mask` as the processor wraps
	/// it; else `address`. `read(a)` returns the code byte at `a`; only the bytes of the instructions decoded are
	/// read, so nothing past the end of a function is touched.
	template<class Read>
	[[nodiscard]] constexpr std::uint64_t destination(std::uint64_t address,
	                                                  const std::array<std::byte, 4>& landing_pad,
	                                                  std::uint64_t address_mask, Read read) noexcept
	{
		std::uint64_t at = address;
		if (read(at) == landing_pad[0] && read(at + 1) == landing_pad[1] && read(at + 2) == landing_pad[2] &&
		    read(at + 3) == landing_pad[3])
			at += 4;
		const auto byte_at = [&](std::uint64_t a) { return static_cast<std::uint64_t>(read(a)); };
		// Displacements are sign-extended to 64 bits; the mask then wraps the sum as the processor does.
		if (read(at) == jmp_rel32)
		{
			const std::uint64_t raw =
			    byte_at(at + 1) | (byte_at(at + 2) << 8) | (byte_at(at + 3) << 16) | (byte_at(at + 4) << 24);
			const std::uint64_t displacement = (raw & 0x8000'0000U) != 0 ? raw | 0xFFFF'FFFF'0000'0000U : raw;
			return (at + 5 + displacement) & address_mask;
		}
		if (read(at) == jmp_rel8)
		{
			const std::uint64_t raw = byte_at(at + 1);
			const std::uint64_t displacement = (raw & 0x80U) != 0 ? raw | 0xFFFF'FFFF'FFFF'FF00U : raw;
			return (at + 2 + displacement) & address_mask;
		}
		return address;
	}
} // namespace member_thunk::detail::arch::x86_jumps
